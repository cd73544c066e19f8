#!/usr/bin/env bash
# Train the small layerwise LLM reranker on CPU: bge-reranker-v2-minicpm-layerwise's design on the packaged
# SmolLM2-135M-Instruct (--family llm-layerwise: LoRA r32/alpha64 on q/k/v/o and one score head per layer from 8 to
# 30, each started at the LM head's 'Yes' row, so at step 0 the last layer ranks as the untrained llm-yes-no), every
# head distilled from the dense MiniLM teacher's scores of whole candidate lists, and write
# checkpoints/llm-layerwise-smollm2, a small folder (adapter, heads, layer_heads_config.json, tokenizer, the loss log)
# that `--reranker llm-layerwise --model-path checkpoints/llm-layerwise-smollm2` loads over the packaged SmolLM2
# (`-o cutoff_layer=N` ranks with layer N's head, the forward pass stopping there).
# DL19 is the held-out test: the pair mix never holds its judged qids nor its query texts (recipes/build_pair_mix.sh).
# Resumable: every step is skipped when its output exists, and training resumes from the last checkpoint-* in
# $OUT (MAX_STEPS stops after that many steps in total; the learning rate is constant after warmup, so a run
# stopped early and resumed with a larger MAX_STEPS follows the same schedule). Extra arguments go to src/train.py.
#   PY (.venv/bin/python), WORK (work_train), OUT ($WORK/llm_layerwise), DEST (checkpoints/llm-layerwise-smollm2),
#   MAX_STEPS (default 400)
# MAX_STEPS is sized by the step time, which its first run measures (trainer_state.json's step_seconds): set it
# so that the run fits ~3 h on this 2-core CPU. Before any run the default 400 is an estimate from llm-yes-no's
# recipe on the same model (12.5 s a step for 16 pairs of the same lengths; here 32 pairs, so ~25 s: ~2.8 h).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."  # the repository root, wherever this is started from
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
W=${WORK:-work_train}
OUT=${OUT:-$W/llm_layerwise}
DEST=${DEST:-checkpoints/llm-layerwise-smollm2}
TOTAL=${MAX_STEPS:-400}
mkdir -p "$W"
. recipes/lib.sh  # last_step, copy_last_checkpoint

# 1. query groups (FlagEmbedding JSONL) with the dense teacher's scores: recipes/build_pair_mix.sh, shared with the
#    small encoder rerankers and llm-yes-no (the DL20 rows' teacher is their qrels grade)
WORK="$W" PY="$PY" bash recipes/build_pair_mix.sh

# 2. fine-tune on whole teacher lists, as the cross-encoder recipe does: groups of 16 (the positive and all 15
#    negatives of a row), 2 queries per step; for every head from layer 8 to 30 the group cross-entropy plus
#    KL(softmax(teacher / 0.05) || softmax(head)) at weight 1, summed over the heads (FlagEmbedding's layerwise
#    loss; with a teacher it replaces the heads' self-distillation). Queries to 32 tokens, passages to 128; lr 2e-4
#    (FlagEmbedding's), constant after 20 warmup steps; checkpoints every 25 steps (two kept) so an interrupted run
#    resumes; a log line every 5 steps (the loss, the last layer's alone as loss_last, and step_seconds).
if [ "$(last_step)" -lt "$TOTAL" ]; then
    $PY src/train.py --family llm-layerwise \
        --model_name_or_path smollm2 \
        --start_layer 8 \
        --data_path "$W/pairs_mix.jsonl" \
        --output_dir "$OUT" \
        --group_size 16 --query_max_len 32 --passage_max_len 128 \
        --distill_weight 1.0 --teacher_temperature 0.05 \
        --max_steps "$TOTAL" \
        --per_device_train_batch_size 2 \
        --learning_rate 2e-4 --lr_scheduler_type constant_with_warmup --warmup_steps 20 --weight_decay 0.0 \
        --logging_steps 5 \
        --save_strategy steps --save_steps 25 --save_total_limit 2 \
        --report_to none --use_cpu --dataloader_num_workers 0 --seed 0 \
        "$@"
fi

# 3. the model folder from the last checkpoint (the final model): the small layout and trainer_state.json (the
#    loss curve and the step times), without the checkpoint's optimizer state and resume tensors
copy_last_checkpoint --present adapter_config.json adapter_model.safetensors layer_heads.safetensors \
    layer_heads_config.json tokenizer.json tokenizer_config.json special_tokens_map.json chat_template.jinja \
    trainer_state.json
