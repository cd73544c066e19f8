#!/usr/bin/env bash
# Train E2Rank on the packaged all-MiniLM-L6-v2 on CPU (--family e2rank: LoRA adapters on the embedder, E2Rank's
# InfoNCE + RankNet on the listwise pseudo-query) and write checkpoints/e2rank-minilm, an adapter folder of ~2.7 MB
# that `--reranker e2rank -o model_path=checkpoints/e2rank-minilm` loads over the packaged MiniLM, with the text
# settings it was trained with as its defaults (e2rank_config.json: query-first prompt, k 10, 256 tokens).
# The teacher lists are PE-Rank's small model's (recipes/build_rank_mix.sh: the same builders and files). DL19 is
# the held-out test: build-rank-data refuses its judged qids (--forbid-qrels), build-small-mix its topics, and the
# runner refuses both again in the rows it reads.
# Resumable: every step is skipped when its output exists, and training resumes from the last checkpoint-* in
# $OUT (MAX_STEPS stops after that many steps in total). Extra arguments go to src/train.py.
#   PY (.venv/bin/python), WORK (work_train), OUT ($WORK/e2rank), DEST (checkpoints/e2rank-minilm),
#   ROWS (a ready rows file instead of $WORK/train_mix.jsonl: skips step 1), MAX_STEPS (default 280, ~40 min)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."  # the repository root, wherever this is started from
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
W=${WORK:-work_train}
OUT=${OUT:-$W/e2rank}
DEST=${DEST:-checkpoints/e2rank-minilm}
TOTAL=${MAX_STEPS:-280}
mkdir -p "$W"
. recipes/lib.sh  # last_step, rank_rows, copy_last_checkpoint

# 1. teacher windows of 20 (~3,300 from ~3,000 queries: DL20 dense and qrels teachers, ArguAna, the mixed topics;
#    see that script); the rows' PE-Rank messages are not read, only qid, query, ranking and extra_texts
rank_rows

# 2. fine-tune LoRA r16/alpha32 on every linear layer MiniLM reads (the runner's defaults), with E2Rank's loss
#    settings (RankNet x2 at scale 10, InfoNCE at temperature 0.03: the runner's defaults, from its script).
#    Pseudo-queries in the query-first order (a 256-token MiniLM never reads a query placed after the passages)
#    of each window's first 10 candidates; 4 windows per step, the losses on 8 candidates of each (the teacher's
#    top one and 7 drawn anew each epoch: 32 candidates per step, the InfoNCE negatives included); lr 2e-4 with 5%
#    warmup, linear decay; a log line every 5 steps (trainer_state.json: both losses and step_seconds), a
#    checkpoint every 25 steps (two kept) so an interrupted run resumes.
#    Sized for a 2-core CPU: a 3-step smoke run took 10.5, 7.3 and 7.4 s a step on an idle 2-core CPU (36-42 s
#    while another job held 1.5 cores), peak RSS 6.4 GB; the default 280 steps (1,120 windows, about a third of
#    an epoch) take ~40 min idle (plus ~20 s of loading).
if [ "$(last_step)" -lt "$TOTAL" ]; then
    /usr/bin/time -v $PY src/train.py --family e2rank \
        --model_name_or_path all-minilm-l6-v2 \
        --data_path "$ROWS" \
        --output_dir "$OUT" \
        --prompt query-first --k 10 --task web-search \
        --slate_size 8 \
        --max_steps "$TOTAL" \
        --per_device_train_batch_size 4 \
        --learning_rate 2e-4 --warmup_steps 0.05 --lr_scheduler_type linear --weight_decay 0.0 \
        --logging_steps 5 \
        --save_strategy steps --save_steps 25 --save_total_limit 2 \
        --report_to none --use_cpu --dataloader_num_workers 0 --seed 0 \
        "$@"
fi

# 3. the model folder from the last checkpoint (the final model): the adapter (its config names the base as
#    `all-minilm-l6-v2`), the text settings and trainer_state.json (the loss curve and the step times), no
#    optimizer state
copy_last_checkpoint adapter_config.json adapter_model.safetensors e2rank_config.json trainer_state.json
