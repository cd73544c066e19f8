#!/usr/bin/env bash
# Fine-tune SmolLM2-135M-Instruct with LoRA to write teacher rankings in DeAR's prompt (--family listwise-sft) on
# CPU, and write checkpoints/listwise-sft-smollm2, which the dear reranker loads with -o model_path=DIR.
# The teacher windows are the PE-Rank recipe's (recipes/pe_rank/train_small.sh step 1, same commands and files, so one
# build serves both): DL20 (dense teacher and qrels), ArguAna and the mixed query set, mixed by
# perank mix-train-rows into train_mix.jsonl. DL19 is the held-out test: build-rank-data refuses its judged
# queries (--forbid-qrels) and build-small-mix its topics.
# TEACHER=colbert (optional; the default, dense, is what trained the shipped folder) trains on the same windows
# ordered by the shipped ColBERT instead (recipes/build_rank_mix.sh: train_mix_colbert.jsonl; its teacher phase is
# ~15 min, estimated), for 600 steps by default, into $WORK/listwise_sft_colbert and $WORK/listwise-sft-smollm2-colbert
# (not the shipped folder: copy it there once it is evaluated). 600 steps is sized by the measured step time: the
# shipped 60 steps took 11 min 32 s (11.5 s a step on an idle 2-core CPU), so 600 take ~1 h 55 min, ~2 h 10 min
# with the teacher phase; the 60 steps of the dense run left the model copying its input order (evaluate.py prints
# the share of windows it gives back unchanged).
# Resumable: every step is skipped when its output exists, and training resumes from the last checkpoint-* in
# $OUT (MAX_STEPS stops after that many steps in total). Extra arguments go to src/train.py.
#   PY (.venv/bin/python), WORK (work_train), TEACHER (dense or colbert), OUT ($WORK/listwise_sft, with colbert
#   $WORK/listwise_sft_colbert), DEST (checkpoints/listwise-sft-smollm2, with colbert
#   $WORK/listwise-sft-smollm2-colbert), MAX_STEPS (60, with colbert 600), COLBERT (checkpoints/colbert-minilm)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."  # the repository root, wherever this is started from
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
W=${WORK:-work_train}
TEACHER=${TEACHER:-dense}
case "$TEACHER" in
    dense) DATA=$W/train_mix.jsonl OUT=${OUT:-$W/listwise_sft} DEST=${DEST:-checkpoints/listwise-sft-smollm2}
        TOTAL=${MAX_STEPS:-60} ;;
    colbert) DATA=$W/train_mix_colbert.jsonl OUT=${OUT:-$W/listwise_sft_colbert}
        DEST=${DEST:-$W/listwise-sft-smollm2-colbert} TOTAL=${MAX_STEPS:-600} ;;
    *) echo "TEACHER=$TEACHER: choose dense (the default) or colbert" >&2; exit 2 ;;
esac
mkdir -p "$W"

# 1. teacher windows of 20 (recipes/build_rank_mix.sh, shared with the PE-Rank and E2Rank recipes; the rows' PE-Rank
#    messages are not read here, only query, ranking and extra_texts)
WORK="$W" PY="$PY" TEACHER="$TEACHER" bash recipes/build_rank_mix.sh

# 2. fine-tune: the repository's prompt (chat messages, ids from 1), windows of 20 with each passage cut to 48
#    tokens (a window is then ~1,700 tokens instead of ~2,300), loss on the answer only; LoRA r16/alpha32 on the
#    attention and MLP projections (the DeAR card's); lr 1e-4 (the repository's training script; the card's 1e-5
#    barely moves in so few steps), batch 1, checkpoints every 10 steps (two kept) so an interrupted run resumes.
#    Budget (measured): 60 steps took 11 min 32 s on an idle 2-core CPU (~11.5 s a step); with TEACHER=colbert the
#    default 600 steps (600 of the mix's 3,282 windows, 0.18 epoch; 60 warm-up steps) take ~1 h 55 min.
. recipes/lib.sh  # last_step
if [ "$(last_step)" -lt "$TOTAL" ]; then
    $PY src/train.py --family listwise-sft \
        --model_name_or_path smollm2 \
        --data_path "$DATA" \
        --prompt repo \
        --max_passage_tokens 48 \
        --model_max_length 2048 \
        --lora_r 16 --lora_alpha 32 --lora_dropout 0.05 \
        --lora_target_modules q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj \
        --output_dir "$OUT" \
        --max_steps "$TOTAL" \
        --per_device_train_batch_size 1 \
        --learning_rate 1e-4 --warmup_steps 0.1 --weight_decay 0.0 \
        --logging_steps 1 \
        --save_strategy steps --save_steps 10 --save_total_limit 2 \
        --report_to none --use_cpu --dataloader_num_workers 0 --seed 0 \
        "$@"
fi

# 3. the model folder from the last checkpoint: the adapter, its tokenizer and the prompt it was trained on
#    (dear_prompt.json), no optimizer state
LAST="$OUT/checkpoint-$(last_step)"
if [ ! -s "$DEST/adapter_model.safetensors" ] || [ "$LAST/adapter_model.safetensors" -nt "$DEST/adapter_model.safetensors" ]; then
    mkdir -p "$DEST"
    for f in adapter_config.json adapter_model.safetensors dear_prompt.json trainer_state.json tokenizer.json \
        tokenizer_config.json special_tokens_map.json chat_template.jinja; do
        if [ -f "$LAST/$f" ]; then cp "$LAST/$f" "$DEST/$f"; fi
    done
    echo "wrote $DEST from $LAST" >&2
fi
