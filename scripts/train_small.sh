#!/usr/bin/env bash
# Train the shipped small PE-Rank (SmolLM2-135M-Instruct + all-MiniLM-L6-v2) on CPU, end to end.
# DL19 is the held-out test: only DL20 is used for training (build_rank_data.py --forbid-qrels enforces it).
# Stage 1 (alignment) is skipped for the shipped model (see docs/training.md: CPU budget); the projector is
# trained from scratch together with LoRA in stage 2.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
W=${WORK:-work_train}
OUT=${OUT:-$W/s2}
mkdir -p "$W"
DL20=data/msmarco-passage/retrieve_results_dl20.json
NODL19=(--forbid-qrels data/msmarco-passage/qrels.dl19-passage.txt)

# 1. teacher lists over DL20 BM25 top-100, windows of 20, with the query-embedding token:
#    (a) the dense MiniLM reranker's order (distillation), (b) DL20 qrels grades, ties by MiniLM cosine.
[ -s "$W/dl20_dense.jsonl" ] || $PY scripts/build_rank_data.py --retrieval-results $DL20 --teacher dense \
    --windows-per-query 12 --query-embedding --embeddings "$W/emb_minilm256.pt" "${NODL19[@]}" -o "$W/dl20_dense.jsonl"
[ -s "$W/dl20_qrels.jsonl" ] || $PY scripts/build_rank_data.py --retrieval-results $DL20 --teacher qrels \
    --qrels data/msmarco-passage/qrels.dl20-passage.txt --tie-break dense --windows-per-query 12 --seed 1 \
    --query-embedding --embeddings "$W/emb_minilm256.pt" "${NODL19[@]}" -o "$W/dl20_qrels.jsonl"
[ -s "$W/train_mix.jsonl" ] || $PY -c "
import random
rows = open('$W/dl20_dense.jsonl').readlines() + open('$W/dl20_qrels.jsonl').readlines()
random.Random(0).shuffle(rows)
open('$W/train_mix.jsonl', 'w').writelines(rows)"

# 2. stage 2: LoRA r=16 on attention+MLP and the projector, embedding-only prompt, top-weighted ListMLE.
#    Resumes automatically from the last checkpoint in $OUT. MAX_STEPS sized to the CPU budget.
/usr/bin/time -v $PY src/train.py \
    --model_type rank_lm \
    --model_name_or_path smollm2 \
    --encoder_name all-minilm-l6-v2 \
    --encoder_max_length 256 \
    --projector_type mlp2x_gelu \
    --query_embedding \
    --tune_mlp_adapter \
    --lora_enable --lora_r 16 --lora_alpha 32 --lora_dropout 0.0 \
    --lora_target_modules q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj \
    --data_path "$W/train_mix.jsonl" \
    --embedding_cache "$W/emb_minilm256.pt" \
    --use_embedding_without_content True \
    --use_embedding_with_content False \
    --loss1_weight 1 --loss2_weight 0 --kl_loss_weight 0 \
    --listmle_weighting top \
    --model_max_length 1024 \
    --output_dir "$OUT" \
    --max_steps "${MAX_STEPS:-400}" \
    --per_device_train_batch_size 1 \
    --gradient_accumulation_steps 1 \
    --learning_rate 5e-4 \
    --projector_lr 2e-3 \
    --lr_scheduler_type constant_with_warmup \
    --warmup_steps 5 \
    --weight_decay 0.0 \
    --logging_steps 1 \
    --save_strategy steps --save_steps 5 --save_total_limit 2 \
    --report_to none \
    --use_cpu \
    --dataloader_num_workers 0 \
    --seed 0 \
    "$@"
