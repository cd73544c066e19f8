#!/usr/bin/env bash
# Train the small ListConRanker on CPU, both stages: the packaged all-MiniLM-L6-v2 as the embedder (384-d), a fresh
# projection + 2-layer list transformer + head of the published sizes scaled to it (672-d, 12 heads, ffn 768), Circle
# Loss (gamma 32, m 0.25: src/perank/families/listconranker/training/arguments.py says why), then copies the result
# to checkpoints/listconranker-minilm (what `--reranker listconranker` loads by default).
#   1. query groups (FlagEmbedding JSONL, perank build-pair-data), never from DL19 (--forbid-qrels, and the
#      builders refuse DL19's topic texts): DL20 BM25 top-100 with its qrels (grade >= 2 positive), and the
#      ArguAna-train / mixed-topic candidate lists of perank build-small-mix with the dense MiniLM teacher
#      (its top 3 positive);
#   2. stage 1, embedder frozen: 4 epochs (as published), 32 lists of 16 per step; the frozen embedder's outputs
#      are cached in memory, so after the first epoch only the small list transformer runs;
#   3. stage 2, everything trains: 2 epochs (as published), 8 lists per step, from stage 1's folder.
# Resumable: finished steps are skipped, an interrupted stage resumes from its last checkpoint. Not timed end to end
# here; stage 2 dominates (the embedder runs forward and backward on 8 x 17 texts of up to 256 tokens per step).
# Settings: PY, WORK (default work_train), OUT, PAIRS (a ready query-group JSONL: skips step 1), MAX_STEPS (per
# stage, instead of the epochs; e.g. MAX_STEPS=2 with a small PAIRS file for a smoke test); extra arguments go
# to both stages' src/train.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."  # the repository root, wherever this is started from
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
W=${WORK:-work_train}
OUT=${OUT:-checkpoints/listconranker-minilm}
S1=$W/listconranker_s1
S2=$W/listconranker_s2
mkdir -p "$W"

# 1. query groups (FlagEmbedding JSONL): recipes/build_pair_mix.sh, shared by the three small encoder rerankers
#    (DL20 judgments repeated, ArguAna's; DL19 never read except to refuse it; see that script).
if [ -z "${PAIRS:-}" ]; then
    PAIRS=$W/pairs_mix.jsonl
    WORK="$W" PY="$PY" bash recipes/build_pair_mix.sh
fi

train() {  # train OUTPUT_DIR LENGTH [flags]: one stage (LENGTH: --num_train_epochs N or --max_steps N);
    # skipped once OUTPUT_DIR holds its final model
    local out=$1 epochs=$2
    shift 2
    [ -s "$out/list_transformer.pt" ] && return 0
    local length=("$epochs")
    [ -n "${MAX_STEPS:-}" ] && length=(--max_steps "$MAX_STEPS")
    $PY src/train.py --family listconranker \
        --data_path "$PAIRS" \
        --output_dir "$out" \
        "${length[@]}" \
        --max_length 128 \
        --group_size 8 --max_positives 2 \
        --circle_gamma 32 --circle_margin 0.25 \
        --lr_scheduler_type linear --warmup_steps 0.05 \
        --weight_decay 0.01 \
        --logging_steps 10 \
        --save_strategy steps --save_steps 100 --save_total_limit 2 \
        --report_to none \
        --use_cpu \
        --dataloader_num_workers 0 \
        --seed 0 \
        "$@"
}

# Sized for a 2-core CPU: lists of 8 (up to 2 positives), texts cut to 128 tokens. Stage 1 embeds each training
# text once (~9k texts, a few minutes) and then trains the list transformer and head on the cached vectors;
# stage 2 fine-tunes everything for a few steps only (~4 s a step).
# 2. stage 1: the embedder frozen; a fresh head learns fast at a high rate
train "$S1" "--num_train_epochs=${S1_EPOCHS:-3}" --model_name_or_path all-minilm-l6-v2 --freeze_embedder True \
    --per_device_train_batch_size 32 --learning_rate 3e-4 "$@"
# 3. stage 2: everything trains, at a fine-tuning rate for the embedder
train "$S2" "--max_steps=${S2_STEPS:-40}" --model_name_or_path "$S1" --freeze_embedder False \
    --per_device_train_batch_size 4 --learning_rate 2e-5 "$@"

# 4. the loadable folder, without trainer state or checkpoints (embedder in float16, tokenizer, head files, config)
if [ ! -s "$OUT/list_transformer.pt" ]; then
    rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
    find "$S2" -maxdepth 1 -type f ! -name trainer_state.json ! -name training_args.bin -exec cp {} "$OUT.tmp/" \;
    # the embedder and the list transformer stored in float16, loaded as float32
    $PY -m perank half-weights "$OUT.tmp/model.safetensors" "$OUT.tmp/list_transformer.pt"
    rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
fi
echo "ListConRanker ready: $OUT"
