#!/usr/bin/env bash
# Fine-tune SmolLM2-135M-Instruct with LoRA to write teacher rankings in DeAR's prompt (--family listwise-sft) on
# CPU, and write checkpoints/listwise-sft-smollm2, which the dear reranker loads with -o model_path=DIR.
# The teacher windows are the PE-Rank recipe's (recipes/pe_rank/train_small.sh step 1, same commands and files, so one
# build serves both): DL20 (dense teacher and qrels), ArguAna and the mixed query set, mixed by
# perank mix-train-rows into train_mix.jsonl. DL19 is the held-out test: build-rank-data refuses its judged
# queries (--forbid-qrels) and build-small-mix its topics.
# Resumable: every step is skipped when its output exists, and training resumes from the last checkpoint-* in
# $OUT (MAX_STEPS stops after that many steps in total). Extra arguments go to src/train.py.
#   PY (.venv/bin/python), WORK (work_train), OUT ($WORK/listwise_sft), DEST (checkpoints/listwise-sft-smollm2)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."  # the repository root, wherever this is started from
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
W=${WORK:-work_train}
OUT=${OUT:-$W/listwise_sft}
DEST=${DEST:-checkpoints/listwise-sft-smollm2}
TOTAL=${MAX_STEPS:-60}
mkdir -p "$W"

# 1. teacher windows of 20 (recipes/build_rank_mix.sh, shared with the PE-Rank and E2Rank recipes; the rows' PE-Rank
#    messages are not read here, only query, ranking and extra_texts)
WORK="$W" PY="$PY" bash recipes/build_rank_mix.sh

# 2. fine-tune: the repository's prompt (chat messages, ids from 1), windows of 20 with each passage cut to 48
#    tokens (a window is then ~1,700 tokens instead of ~2,300), loss on the answer only; LoRA r16/alpha32 on the
#    attention and MLP projections (the DeAR card's); lr 1e-4 (the repository's training script; the card's 1e-5
#    barely moves in so few steps), batch 1, checkpoints every 10 steps (two kept) so an interrupted run resumes.
#    Budget (estimated, not measured): ~20 s a step on an idle 2-core CPU, 60 steps in ~20 min.
. recipes/lib.sh  # last_step
if [ "$(last_step)" -lt "$TOTAL" ]; then
    $PY src/train.py --family listwise-sft \
        --model_name_or_path smollm2 \
        --data_path "$W/train_mix.jsonl" \
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
