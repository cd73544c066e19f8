#!/usr/bin/env bash
# Train a jina-reranker-v3-style listwise scorer on the packaged SmolLM2-135M on CPU (--family jina-listwise: the
# two markers added, LoRA r8/alpha16 on attention and MLP, a fresh projector 576 -> 288 -> 512; in-list InfoNCE +
# RankNet on the cosines at temperature 0.05) and write checkpoints/jina-listwise-smollm2, a small folder (~15 MB:
# adapter, marker rows, projector, tokenizer, jina_listwise_config.json) that
# `--reranker jina-listwise -o model_path=checkpoints/jina-listwise-smollm2` loads over the packaged SmolLM2, with
# the prompt settings it was trained with as its defaults (12 candidates a block, 64 tokens a candidate).
# The teacher lists are PE-Rank's small model's (recipes/build_rank_mix.sh: the same builders and files). DL19 is
# the held-out test: build-rank-data refuses its judged qids (--forbid-qrels), build-small-mix its topics, and the
# runner refuses both again in the rows it reads.
# Resumable: every step is skipped when its output exists, and training resumes from the last checkpoint-* in
# $OUT (MAX_STEPS stops after that many steps in total). Extra arguments go to src/train.py.
#   PY (.venv/bin/python), WORK (work_train), OUT ($WORK/jina-listwise), DEST (checkpoints/jina-listwise-smollm2),
#   ROWS (a ready rows file instead of $WORK/train_mix.jsonl: skips step 1), MAX_STEPS (default 400, ~36 min)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."  # the repository root, wherever this is started from
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
W=${WORK:-work_train}
OUT=${OUT:-$W/jina-listwise}
DEST=${DEST:-checkpoints/jina-listwise-smollm2}
TOTAL=${MAX_STEPS:-400}
mkdir -p "$W"
. recipes/lib.sh  # last_step, rank_rows, copy_last_checkpoint

# 1. teacher windows of 20 (~3,300 from ~3,000 queries: DL20 dense and qrels teachers, ArguAna, the mixed topics;
#    see that script); the rows' PE-Rank messages are not read, only qid, query, ranking and extra_texts
rank_rows

# 2. fine-tune: one prompt per window, written by the reranker's own prompt code: 12 of its 20 candidates (the
#    teacher's top one and 11 drawn anew each epoch, in first-stage order), each cut to 64 tokens, the query to
#    48 (~1,000 prompt tokens); 1 prompt a step; lr 2e-4 with 5% warmup, linear decay; a log line every 5 steps
#    (trainer_state.json: both losses and step_seconds), a checkpoint every 15 steps (two kept) so an
#    interrupted run resumes.
#    Sized for a 2-core CPU: on an idle one a step takes ~5.4 s (slates of 12 at 64 tokens, ~1,000 prompt tokens;
#    the first 15 steps of the recipe's 400-step run), so the default 400 steps (400 windows, an eighth of the mix) take
#    ~36 min. A 3-step smoke run while another job held ~1.5 of the 2 cores took 43-58 s a step (peak RSS 3.8 GB;
#    slates of 16 at 96 tokens: 64-82 s, 5.7 GB).
if [ "$(last_step)" -lt "$TOTAL" ]; then
    /usr/bin/time -v $PY src/train.py --family jina-listwise \
        --model_name_or_path smollm2 \
        --data_path "$ROWS" \
        --output_dir "$OUT" \
        --slate_size 12 --max_doc_length 64 --max_query_length 48 \
        --max_steps "$TOTAL" \
        --per_device_train_batch_size 1 \
        --learning_rate 2e-4 --warmup_steps 0.05 --lr_scheduler_type linear --weight_decay 0.0 \
        --logging_steps 5 \
        --save_strategy steps --save_steps 15 --save_total_limit 2 \
        --report_to none --use_cpu --dataloader_num_workers 0 --seed 0 \
        "$@"
fi

# 3. the model folder from the last checkpoint (the final model): the small layout and trainer_state.json (the
#    loss curve and the step times), without the checkpoint's optimizer state and resume tensors
copy_last_checkpoint --present adapter_config.json adapter_model.safetensors projector.safetensors \
    marker_embeddings.safetensors jina_listwise_config.json tokenizer.json tokenizer_config.json \
    chat_template.jinja trainer_state.json
