#!/usr/bin/env bash
# The teacher windows the small listwise models train on (PE-Rank, listwise-sft, E2Rank), built once and shared:
# windows of 20 candidates with a teacher ranking (perank build-rank-data rows; PE-Rank's prompts carry the
# query-embedding token, which the other families do not read), mixed by perank mix-train-rows into
# $WORK/train_mix.jsonl (and train_mix_e2/e3.jsonl, the same caps with other windows, for later epochs):
#   (a) DL20 BM25 top-100 (54 judged queries): the dense MiniLM reranker's order, and DL20 qrels grades with ties
#       by MiniLM cosine;
#   (b) ArguAna (1,306 training queries; 100 held out for validation) over its corpus, dense teacher;
#   (c) 1,665 more query texts (DL20's 200 topics, BEIR test topics) over ArguAna + DL20 passages, dense teacher.
#   The mix keeps one window per ArguAna/mixed query and 3 per DL20 query and teacher: ~3,300 windows from ~3,000
#   distinct queries. Encoding the teacher's ~20k texts takes most of the time (cached in $WORK/emb_minilm256.pt).
# DL19 is the held-out test: build-rank-data refuses its judged queries (--forbid-qrels) and build-small-mix its
# topics (35 of its candidate passages are also DL20 candidates). Every file is skipped once it exists.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."  # the repository root, wherever this is started from
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
W=${WORK:-work_train}
mkdir -p "$W"
DL20=data/msmarco-passage/retrieve_results_dl20.json
NODL19=(--forbid-qrels data/msmarco-passage/qrels.dl19-passage.txt)
# every window gets the query-embedding token as the first answer token; embeddings come from (and go to) one cache
ROWS=(--query-embedding --query-embedding-position answer --embeddings "$W/emb_minilm256.pt" "${NODL19[@]}")
[ -s "$W/dl20_dense.jsonl" ] || $PY -m perank build-rank-data --retrieval-results $DL20 --teacher dense \
    --windows-per-query 12 "${ROWS[@]}" -o "$W/dl20_dense.jsonl"
[ -s "$W/dl20_qrels.jsonl" ] || $PY -m perank build-rank-data --retrieval-results $DL20 --teacher qrels \
    --qrels data/msmarco-passage/qrels.dl20-passage.txt --tie-break dense --windows-per-query 12 --seed 1 \
    "${ROWS[@]}" -o "$W/dl20_qrels.jsonl"
[ -s "$W/mixed.jsonl" ] || $PY -m perank build-small-mix --output-dir "$W"
for s in arguana_train mixed; do
    [ -s "$W/${s}_dense.jsonl" ] || $PY -m perank build-rank-data --retrieval-results "$W/$s.jsonl" --teacher dense \
        --windows-per-query 2 "${ROWS[@]}" -o "$W/${s}_dense.jsonl"
done
MIX=("$W/arguana_train_dense.jsonl:1" "$W/mixed_dense.jsonl:1" "$W/dl20_dense.jsonl:3" "$W/dl20_qrels.jsonl:3")
[ -s "$W/train_mix.jsonl" ] || $PY -m perank mix-train-rows --seed 0 -o "$W/train_mix.jsonl" "${MIX[@]}"
# the later epochs' mixes: the same caps, other windows where a query has more than one (about half differ)
[ -s "$W/train_mix_e2.jsonl" ] || $PY -m perank mix-train-rows --seed 1 -o "$W/train_mix_e2.jsonl" "${MIX[@]}"
[ -s "$W/train_mix_e3.jsonl" ] || $PY -m perank mix-train-rows --seed 2 -o "$W/train_mix_e3.jsonl" "${MIX[@]}"
echo "$W/train_mix.jsonl: $(wc -l < "$W/train_mix.jsonl") windows" >&2
