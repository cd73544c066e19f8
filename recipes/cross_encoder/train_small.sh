#!/usr/bin/env bash
# Train the small cross-encoder (all-MiniLM-L6-v2 + a fresh one-label head) on CPU and write
# checkpoints/cross-encoder-minilm, the cross-encoder reranker's default model.
# DL19 is the held-out test: build-pair-data refuses its judged qids (--forbid-qrels) and its query texts.
# Resumable: every step is skipped when its output exists, and training resumes from the last checkpoint-* in
# $OUT (MAX_STEPS stops after that many steps in total). Extra arguments go to src/train.py.
#   PY (.venv/bin/python), WORK (work_train), OUT ($WORK/cross_encoder), DEST (checkpoints/cross-encoder-minilm)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."  # the repository root, wherever this is started from
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
W=${WORK:-work_train}
OUT=${OUT:-$W/cross_encoder}
DEST=${DEST:-checkpoints/cross-encoder-minilm}
TOTAL=${MAX_STEPS:-150}
mkdir -p "$W"

# 1. query groups (FlagEmbedding JSONL): recipes/build_pair_mix.sh, shared by the three small encoder rerankers
#    (DL20 judgments repeated, ArguAna's; DL19 never read except to refuse it; see that script).
WORK="$W" PY="$PY" bash recipes/build_pair_mix.sh

# 2. fine-tune: 4 queries per step, groups of 8 (1 positive, 7 negatives), queries to 32 tokens, pairs to 160,
#    lr 1e-4 with 10% warmup, checkpoints every 25 steps (two kept) so an interrupted run resumes. Sized for a
#    2-core CPU: ~4 s a step, 150 steps (600 groups, about half an epoch) in ~10 min.
. recipes/lib.sh  # last_step
if [ "$(last_step)" -lt "$TOTAL" ]; then
    $PY src/train.py --family cross-encoder \
        --model_name_or_path all-minilm-l6-v2 \
        --data_path "$W/pairs_mix.jsonl" \
        --output_dir "$OUT" \
        --group_size 8 --query_max_len 32 --passage_max_len 160 \
        --max_steps "$TOTAL" \
        --per_device_train_batch_size 4 \
        --learning_rate 1e-4 --warmup_steps 0.1 --weight_decay 0.01 \
        --logging_steps 5 \
        --save_strategy steps --save_steps 25 --save_total_limit 2 \
        --report_to none --use_cpu --dataloader_num_workers 0 --seed 0 \
        "$@"
fi

# 3. the default model folder from the last checkpoint (the final model): only what loading needs (config,
#    weights in float16, tokenizer) and the loss log, no optimizer state
LAST="$OUT/checkpoint-$(last_step)"
if [ ! -s "$DEST/model.safetensors" ] || [ "$LAST/model.safetensors" -nt "$DEST/model.safetensors" ]; then
    mkdir -p "$DEST"
    for f in config.json model.safetensors trainer_state.json tokenizer.json tokenizer_config.json \
        special_tokens_map.json vocab.txt; do
        if [ -f "$LAST/$f" ]; then cp "$LAST/$f" "$DEST/$f"; fi
    done
    $PY -m perank half-weights "$DEST/model.safetensors"  # stored in float16, loaded as float32
    echo "wrote $DEST from $LAST" >&2
fi
