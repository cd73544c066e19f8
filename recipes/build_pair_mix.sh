#!/usr/bin/env bash
# The query groups the three small encoder rerankers train on (cross-encoder, ColBERT, ListConRanker), built once
# and shared: writes $WORK/pairs_mix.jsonl (FlagEmbedding JSONL, perank.training.pairs) from judgments only.
# - DL20 BM25 top-100: passages judged grade >= 2 are positives, up to 15 other candidates negatives (52 of the 54
#   judged queries have both); in-domain but few, so these rows are repeated ${DL20_REPEAT:-4} times;
# - the mixed topics of perank build-small-mix (DL20's 200 topics and the BEIR test topics' texts over ArguAna
#   and DL20 passages, 1,652 queries): the packaged MiniLM's top-1 is the positive, 15 others the negatives (a dense
#   teacher; encoding their ~15.5k distinct texts takes ~7 min on this CPU, cached in $WORK/emb_minilm256.pt).
# ArguAna's own queries are left out: its positives are counter-arguments, and a first cross-encoder trained with
# them learned that task (training groups separated, DL20 not at all: DL19 nDCG@10 0.23; checkpoints/README.md).
# DL19 is the held-out test: --forbid-qrels refuses its judged qids and build-pair-data refuses its query texts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."  # the repository root, wherever this is started from
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
W=${WORK:-work_train}
mkdir -p "$W"
NODL19=(--forbid-qrels data/msmarco-passage/qrels.dl19-passage.txt --max-negatives 15 --seed 0)
[ -s "$W/pairs_dl20.jsonl" ] || $PY -m perank build-pair-data --teacher qrels --min-grade 2 --teacher-scores \
    --retrieval-results data/msmarco-passage/retrieve_results_dl20.json \
    --qrels data/msmarco-passage/qrels.dl20-passage.txt "${NODL19[@]}" -o "$W/pairs_dl20.jsonl"
[ -s "$W/mixed.jsonl" ] || $PY -m perank build-small-mix --output-dir "$W"
[ -s "$W/pairs_mixed.jsonl" ] || $PY -m perank build-pair-data --teacher dense \
    --retrieval-results "$W/mixed.jsonl" --embeddings "$W/emb_minilm256.pt" "${NODL19[@]}" -o "$W/pairs_mixed.jsonl"
if [ ! -s "$W/pairs_mix.jsonl" ]; then
    for _ in $(seq "${DL20_REPEAT:-4}"); do cat "$W/pairs_dl20.jsonl"; done > "$W/pairs_mix.tmp"
    cat "$W/pairs_mixed.jsonl" >> "$W/pairs_mix.tmp"
    mv "$W/pairs_mix.tmp" "$W/pairs_mix.jsonl"
fi
echo "$W/pairs_mix.jsonl: $(wc -l < "$W/pairs_mix.jsonl") groups" >&2
