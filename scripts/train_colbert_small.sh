#!/usr/bin/env bash
# Train the small ColBERT model (all-MiniLM-L6-v2 token states + a 384x384 colbert_linear, started at the identity)
# on CPU and write checkpoints/colbert-minilm, the colbert reranker's default model.
# DL19 is the held-out test: build_pair_data.py refuses its judged qids (--forbid-qrels) and its query texts.
# Resumable: every step is skipped when its output exists, and training resumes from the last checkpoint-* in
# $OUT (MAX_STEPS stops after that many steps in total). Extra arguments go to src/train.py.
#   PY (.venv/bin/python), WORK (work_train), OUT ($WORK/colbert), DEST (checkpoints/colbert-minilm)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
W=${WORK:-work_train}
OUT=${OUT:-$W/colbert}
DEST=${DEST:-checkpoints/colbert-minilm}
TOTAL=${MAX_STEPS:-750}
mkdir -p "$W"

# 1. query groups (FlagEmbedding JSONL): scripts/build_pair_mix.sh, shared by the three small encoder rerankers
#    (DL20 judgments repeated, ArguAna's; DL19 never read except to refuse it; see that script).
WORK="$W" PY="$PY" bash scripts/build_pair_mix.sh

# 2. fine-tune encoder + projection: 8 queries per batch, groups of 8 (1 positive, 7 negatives) and in-batch
#    negatives (each query against all 64 passages), cross-entropy on normalised MaxSim / 0.02 (bge-m3's
#    temperature); queries to 64 tokens, passages to 192; lr 3e-5 with 10% warmup; checkpoints every 50 steps
#    (two kept) so an interrupted run resumes. Inference later uses 512/512 tokens (bge-m3's defaults).
last_step() {  # the step of the last checkpoint in $OUT (0 if none)
    local c n=0
    for c in "$OUT"/checkpoint-*; do
        [ -d "$c" ] && [ "${c##*-}" -gt "$n" ] && n=${c##*-}
    done
    echo "$n"
}
if [ "$(last_step)" -lt "$TOTAL" ]; then
    $PY src/train.py --family colbert \
        --model_name_or_path all-minilm-l6-v2 \
        --data_path "$W/pairs_mix.jsonl" \
        --output_dir "$OUT" \
        --train_group_size 8 --query_max_len 64 --passage_max_len 192 \
        --temperature 0.02 --use_teacher_scores False \
        --max_steps "$TOTAL" \
        --per_device_train_batch_size 8 \
        --learning_rate 3e-5 --warmup_steps 0.1 --weight_decay 0.01 \
        --logging_steps 10 \
        --save_strategy steps --save_steps 50 --save_total_limit 2 \
        --report_to none --use_cpu --dataloader_num_workers 0 --seed 0 \
        "$@"
fi

# 3. the default model folder: only what loading needs (encoder, tokenizer, colbert_linear.pt) and the loss log
if [ ! -s "$DEST/colbert_linear.pt" ] || [ "$OUT/colbert_linear.pt" -nt "$DEST/colbert_linear.pt" ]; then
    mkdir -p "$DEST"
    for f in config.json model.safetensors tokenizer.json tokenizer_config.json colbert_linear.pt trainer_state.json; do
        cp "$OUT/$f" "$DEST/$f"
    done
    echo "wrote $DEST" >&2
fi
