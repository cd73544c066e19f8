#!/usr/bin/env bash
# Train the small ListConRanker on CPU from the packaged all-MiniLM-L6-v2 (384-d) with Circle Loss, then copy the
# result to checkpoints/listconranker-minilm (what `--reranker listconranker` loads by default).
#   1. query groups (FlagEmbedding JSONL, recipes/build_pair_mix.sh), never from DL19 (--forbid-qrels, and the
#      builders refuse DL19's topic texts): DL20 BM25 top-100 with its qrels (grade >= 2 positive), and the
#      mixed-topic candidate lists of perank build-small-mix with the dense MiniLM teacher (its top 1 positive);
#   2. RESIDUAL=1 (the default): perank's residual model (src/perank/families/listconranker/model.py): the list
#      transformer is a branch added to MiniLM's own sentence embedding through an output layer W_out that starts
#      at zero, so step 0 ranks exactly as the dense MiniLM cosine (DL19 nDCG@10 0.6424) and training moves it from
#      there. The embedder stays frozen and its embeddings come from the dense teacher's file that step 1 already
#      wrote ($W/emb_minilm256.pt, 256 tokens as the dense reranker; a text it lacks is embedded when first met and
#      kept in memory), so a step runs only the list transformer: projection 384 -> 672, 2 layers (12 heads, ffn
#      768), W_out 672 -> 384; lists of 16 (up to 2 positives), 32 lists per step, Circle Loss on the cosine
#      (gamma 32, m 0.25), lr ${LR:-3e-5}, 10% warmup, linear decay, ${STEPS:-700} steps: 2 min 16 s here
#      (0.19 s a step once the embeddings are cached; 58 steps are one epoch of the 1,860 groups, so 700 are 12). The folder holds only the trained parts (float16, 12 MB), names the
#      packaged MiniLM in listconranker_config.json, and keeps trainer_state.json: the loss curve, score_pos /
#      score_neg (mean cosine of positives and negatives) and s_per_step, every 10 steps;
#      RESIDUAL=0: the published architecture in two stages (the run of checkpoints/README.md, DL19 0.2648):
#      stage 1, embedder frozen, a fresh projection + list transformer + head, 3 epochs, 32 lists of 8 per step;
#      stage 2, everything trains, 40 steps of 4 lists, from stage 1's folder.
# Resumable: finished steps are skipped, an interrupted stage resumes from its last checkpoint.
# Settings: PY, WORK (default work_train), OUT, PAIRS (a ready query-group JSONL: skips step 1), EMBEDDINGS (the
# dense teacher's .pt; default $W/emb_minilm256.pt, used when present), RESIDUAL, STEPS (residual, default 700),
# LR (residual, default 3e-5), MAX_STEPS (per stage, overrides STEPS and the epochs; e.g. MAX_STEPS=3 with a
# small PAIRS file for a smoke test); extra arguments go to every stage's src/train.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."  # the repository root, wherever this is started from
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
W=${WORK:-work_train}
OUT=${OUT:-checkpoints/listconranker-minilm}
RESIDUAL=${RESIDUAL:-1}
mkdir -p "$W"

# 1. query groups (FlagEmbedding JSONL): recipes/build_pair_mix.sh, shared by the three small encoder rerankers
#    (DL20 judgments repeated, ArguAna's; DL19 never read except to refuse it; see that script).
if [ -z "${PAIRS:-}" ]; then
    PAIRS=$W/pairs_mix.jsonl
    WORK="$W" PY="$PY" bash recipes/build_pair_mix.sh
fi

train() {  # train OUTPUT_DIR LENGTH [flags]: one stage (LENGTH: --num_train_epochs=N or --max_steps=N);
    # skipped once OUTPUT_DIR holds its final model
    local out=$1 length=$2
    shift 2
    [ -s "$out/list_transformer.pt" ] && return 0
    [ -n "${MAX_STEPS:-}" ] && length=--max_steps=$MAX_STEPS
    $PY src/train.py --family listconranker \
        --data_path "$PAIRS" \
        --output_dir "$out" \
        "$length" \
        --circle_gamma 32 --circle_margin 0.25 \
        --lr_scheduler_type linear \
        --weight_decay 0.01 \
        --logging_steps 10 \
        --save_strategy steps --save_steps 100 --save_total_limit 2 \
        --report_to none \
        --use_cpu \
        --dataloader_num_workers 0 \
        --seed 0 \
        "$@"
}

publish() {  # publish FOLDER "HALF..." FILE...: FOLDER's FILEs to $OUT, the HALF ones stored in float16 (they load
    # as float32); skipped once $OUT holds a model
    local from=$1 half=$2 f
    shift 2
    [ -s "$OUT/list_transformer.pt" ] && return 0
    rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
    for f in "$@"; do cp "$from/$f" "$OUT.tmp/"; done
    for f in $half; do $PY -m perank half-weights "$OUT.tmp/$f"; done
    rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
}

if [ "$RESIDUAL" = 1 ]; then
    # 2. the residual model over the frozen MiniLM, one stage (the embedder never trains, so there is no stage 2)
    R=$W/listconranker_residual
    EMB=${EMBEDDINGS:-$W/emb_minilm256.pt}
    cache=()
    [ -s "$EMB" ] && cache=(--embedding_cache "$EMB")
    train "$R" "--max_steps=${STEPS:-700}" --model_name_or_path all-minilm-l6-v2 \
        --residual_init True --freeze_embedder True --max_length 256 \
        --group_size 16 --max_positives 2 --per_device_train_batch_size 32 \
        --learning_rate "${LR:-3e-5}" --warmup_steps 0.1 "${cache[@]}" "$@"
    # 3. the folder: the three head files, the config naming the packaged MiniLM, the loss curve and step times
    heads="linear_in_embedding.pt list_transformer.pt linear_out_embedding.pt"
    publish "$R" "$heads" $heads listconranker_config.json trainer_state.json
else
    S1=$W/listconranker_s1
    S2=$W/listconranker_s2
    # Sized for a 2-core CPU: lists of 8 (up to 2 positives), texts cut to 128 tokens. Stage 1 embeds each
    # training text once (~9k texts, a few minutes) and then trains the list transformer and head on the cached
    # vectors; stage 2 fine-tunes everything for a few steps only (~4 s a step).
    published=(--max_length 128 --group_size 8 --max_positives 2 --warmup_steps 0.05)
    # 2. stage 1: the embedder frozen; a fresh head learns fast at a high rate
    train "$S1" "--num_train_epochs=${S1_EPOCHS:-3}" --model_name_or_path all-minilm-l6-v2 --freeze_embedder True \
        --per_device_train_batch_size 32 --learning_rate 3e-4 "${published[@]}" "$@"
    # 3. stage 2: everything trains, at a fine-tuning rate for the embedder
    train "$S2" "--max_steps=${S2_STEPS:-40}" --model_name_or_path "$S1" --freeze_embedder False \
        --per_device_train_batch_size 4 --learning_rate 2e-5 "${published[@]}" "$@"
    # 4. the folder without trainer state or checkpoints (embedder and list transformer in float16, tokenizer, the
    #    other head file, config)
    publish "$S2" "model.safetensors list_transformer.pt" $(cd "$S2" && find . -maxdepth 1 -type f \
        ! -name trainer_state.json ! -name training_args.bin -printf '%f\n')
fi
echo "ListConRanker ready: $OUT"
