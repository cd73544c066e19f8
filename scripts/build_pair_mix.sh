#!/usr/bin/env bash
# The query groups the three small encoder rerankers train on (cross-encoder, ColBERT, ListConRanker), built once
# and shared: writes $WORK/pairs_mix.jsonl (FlagEmbedding JSONL, perank.training.pairs) from judgments only.
# - DL20 BM25 top-100: passages judged grade >= 2 are positives, up to 15 other candidates negatives (52 of the 54
#   judged queries have both); in-domain but few, so these rows are repeated ${DL20_REPEAT:-4} times;
# - ArguAna training queries (scripts/build_small_mix.py's BM25 lists): the qrels' counter-argument when BM25
#   retrieved it, 15 other candidates as negatives (1,131 queries).
# DL19 is the held-out test: --forbid-qrels refuses its judged qids and build_pair_data.py refuses its query texts.
# No dense-teacher groups: encoding the ~170k passages of the mixed topics costs ~10 min on this CPU, and
# distilling the dense reranker could at best reach it, while the goal is to pass it.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
W=${WORK:-work_train}
mkdir -p "$W"
NODL19=(--forbid-qrels data/msmarco-passage/qrels.dl19-passage.txt --max-negatives 15 --seed 0 --teacher-scores)
[ -s "$W/pairs_dl20.jsonl" ] || $PY scripts/build_pair_data.py --teacher qrels --min-grade 2 \
    --retrieval-results data/msmarco-passage/retrieve_results_dl20.json \
    --qrels data/msmarco-passage/qrels.dl20-passage.txt "${NODL19[@]}" -o "$W/pairs_dl20.jsonl"
[ -s "$W/arguana_train.jsonl" ] || $PY scripts/build_small_mix.py --output-dir "$W"
[ -s "$W/pairs_arguana.jsonl" ] || $PY scripts/build_pair_data.py --teacher qrels \
    --retrieval-results "$W/arguana_train.jsonl" --qrels data/beir/qrels.beir-v1.0.0-arguana.test.txt \
    "${NODL19[@]}" -o "$W/pairs_arguana.jsonl"
if [ ! -s "$W/pairs_mix.jsonl" ]; then
    for _ in $(seq "${DL20_REPEAT:-4}"); do cat "$W/pairs_dl20.jsonl"; done > "$W/pairs_mix.tmp"
    cat "$W/pairs_arguana.jsonl" >> "$W/pairs_mix.tmp"
    mv "$W/pairs_mix.tmp" "$W/pairs_mix.jsonl"
fi
echo "$W/pairs_mix.jsonl: $(wc -l < "$W/pairs_mix.jsonl") groups" >&2
