#!/usr/bin/env bash
# Train the small LLM yes/no reranker (SmolLM2-135M-Instruct + LoRA on the 'Yes' logit, FlagEmbedding's
# bge-reranker-v2-gemma recipe scaled down) on CPU and write checkpoints/llm-yes-no-smollm2, a LoRA adapter folder
# that `--reranker llm-yes-no -o model_path=checkpoints/llm-yes-no-smollm2` loads (base: the packaged smollm2).
# DL19 is the held-out test: the pair mix never holds its judged qids nor its query texts (see recipes/build_pair_mix.sh).
# Resumable: every step is skipped when its output exists, and training resumes from the last checkpoint-* in
# $OUT (MAX_STEPS stops after that many steps in total). Extra arguments go to src/train.py.
#   PY (.venv/bin/python), WORK (work_train), OUT ($WORK/llm_yes_no), DEST (checkpoints/llm-yes-no-smollm2)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."  # the repository root, wherever this is started from
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
W=${WORK:-work_train}
OUT=${OUT:-$W/llm_yes_no}
DEST=${DEST:-checkpoints/llm-yes-no-smollm2}
TOTAL=${MAX_STEPS:-100}
mkdir -p "$W"

# 1. query groups (FlagEmbedding JSONL): recipes/build_pair_mix.sh, shared with the small encoder rerankers
WORK="$W" PY="$PY" bash recipes/build_pair_mix.sh

# 2. fine-tune: LoRA r32 / alpha64 on q,k,v,o (the runner's defaults, as FlagEmbedding's gemma recipe), 2 queries
#    per step, groups of 8 (1 positive, 7 negatives), queries to 32 tokens, passages to 128, lr 2e-4 with 10%
#    warmup, checkpoints every 25 steps (two kept) so an interrupted run resumes. Sized for a 2-core CPU.
. recipes/lib.sh  # last_step
if [ "$(last_step)" -lt "$TOTAL" ]; then
    $PY src/train.py --family llm-yes-no \
        --model_name_or_path smollm2 \
        --data_path "$W/pairs_mix.jsonl" \
        --output_dir "$OUT" \
        --group_size 8 --query_max_len 32 --passage_max_len 128 \
        --max_steps "$TOTAL" \
        --per_device_train_batch_size 2 \
        --learning_rate 2e-4 --warmup_steps 0.1 --weight_decay 0.0 \
        --logging_steps 5 \
        --save_strategy steps --save_steps 25 --save_total_limit 2 \
        --report_to none --use_cpu --dataloader_num_workers 0 --seed 0 \
        "$@"
fi

# 3. the model folder from the last checkpoint: the adapter (its config names the base as `smollm2`), the
#    tokenizer and the loss log, no optimizer state
LAST="$OUT/checkpoint-$(last_step)"
if [ ! -s "$DEST/adapter_model.safetensors" ] || [ "$LAST/adapter_model.safetensors" -nt "$DEST/adapter_model.safetensors" ]; then
    mkdir -p "$DEST"
    for f in adapter_config.json adapter_model.safetensors trainer_state.json tokenizer.json tokenizer_config.json \
        special_tokens_map.json chat_template.jinja; do
        if [ -f "$LAST/$f" ]; then cp "$LAST/$f" "$DEST/$f"; fi
    done
    echo "wrote $DEST from $LAST" >&2
fi
