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
# TEACHER=colbert (optional; default dense, the files above) orders the windows of (a), (b) and (c) by the shipped
# ColBERT (checkpoints/colbert-minilm, or $COLBERT; DL19 nDCG@10 0.6556 against the dense teacher's 0.6424) instead,
# and writes $WORK/train_mix_colbert.jsonl (and _e2/_e3). The windows are the dense build's, drawn with the same
# flags and seeds (build-rank-data's draws read no teacher), so the two mixes hold the same windows in the same
# order and differ only in the teacher's ranking; the DL20 qrels windows are shared. ColBERT scores only the
# passages the windows draw (build-rank-data --candidates-only: 109,648 query-passage pairs, 13,691 distinct
# passages), with its token vectors cached by text in $WORK/teacher_colbert/colbert_tokens.sqlite (~3.4 GB), so
# each distinct passage is encoded once: about 15 min on an idle 2-core CPU (estimated; without the cache it would
# be ~80 min: the 1.8 s a DL19 query of 100 passages, scaled to 109,648 pairs twice DL19's length). The run is
# evaluate.py's, resumable query by query.
# DL19 is the held-out test: build-rank-data refuses its judged queries (--forbid-qrels, in every build, the
# --candidates-only ones included) and build-small-mix its topics (35 of its candidate passages are also DL20
# candidates). Every file is skipped once it exists.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."  # the repository root, wherever this is started from
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
W=${WORK:-work_train}
TEACHER=${TEACHER:-dense}
case "$TEACHER" in
    dense) MIXED=train_mix ;;
    colbert) MIXED=train_mix_colbert ;;
    *) echo "TEACHER=$TEACHER: choose dense (the default) or colbert" >&2; exit 2 ;;
esac
mkdir -p "$W"
DL20=data/msmarco-passage/retrieve_results_dl20.json
NODL19=(--forbid-qrels data/msmarco-passage/qrels.dl19-passage.txt)
# every window gets the query-embedding token as the first answer token; embeddings come from (and go to) one cache
ROWS=(--query-embedding --query-embedding-position answer --embeddings "$W/emb_minilm256.pt" "${NODL19[@]}")
if [ "$TEACHER" = dense ]; then
    [ -s "$W/dl20_dense.jsonl" ] || $PY -m perank build-rank-data --retrieval-results $DL20 --teacher dense \
        --windows-per-query 12 "${ROWS[@]}" -o "$W/dl20_dense.jsonl"
fi
[ -s "$W/dl20_qrels.jsonl" ] || $PY -m perank build-rank-data --retrieval-results $DL20 --teacher qrels \
    --qrels data/msmarco-passage/qrels.dl20-passage.txt --tie-break dense --windows-per-query 12 --seed 1 \
    "${ROWS[@]}" -o "$W/dl20_qrels.jsonl"
[ -s "$W/mixed.jsonl" ] || $PY -m perank build-small-mix --output-dir "$W"
if [ "$TEACHER" = dense ]; then
    for s in arguana_train mixed; do
        [ -s "$W/${s}_dense.jsonl" ] || $PY -m perank build-rank-data --retrieval-results "$W/$s.jsonl" \
            --teacher dense --windows-per-query 2 "${ROWS[@]}" -o "$W/${s}_dense.jsonl"
    done
else
    T=$W/teacher_colbert
    mkdir -p "$T"
    # colbert_rows NAME CANDIDATES WINDOWS_PER_QUERY: the dense build's windows of NAME (same candidates, window
    # flags and seed), ordered by a ColBERT run over only the passages they draw
    colbert_rows() {
        local name=$1 candidates=$2 per=$3 drawn run
        drawn=$T/${name//_/-}-windows.jsonl  # evaluate.py names its run after this file (no "_" in run names)
        run=$T/eval_${name//_/-}-windows_colbert_top100.txt
        [ -s "$W/${name}_colbert.jsonl" ] && return 0
        [ -s "$drawn" ] || $PY -m perank build-rank-data --retrieval-results "$candidates" --candidates-only \
            --windows-per-query "$per" "${NODL19[@]}" -o "$drawn"
        [ -s "$run" ] || $PY src/evaluate.py --reranker colbert --model-path "${COLBERT:-checkpoints/colbert-minilm}" \
            --retrieval-results "$drawn" --topk 100 --output-dir "$T" --run-name colbert \
            -o embedding_cache="$T/colbert_tokens.sqlite"
        $PY -m perank build-rank-data --retrieval-results "$candidates" --teacher run --run "$run" \
            --windows-per-query "$per" "${ROWS[@]}" -o "$W/${name}_colbert.jsonl"
    }
    colbert_rows dl20 $DL20 12
    colbert_rows arguana_train "$W/arguana_train.jsonl" 2
    colbert_rows mixed "$W/mixed.jsonl" 2
fi
MIX=("$W/arguana_train_$TEACHER.jsonl:1" "$W/mixed_$TEACHER.jsonl:1" "$W/dl20_$TEACHER.jsonl:3" "$W/dl20_qrels.jsonl:3")
[ -s "$W/$MIXED.jsonl" ] || $PY -m perank mix-train-rows --seed 0 -o "$W/$MIXED.jsonl" "${MIX[@]}"
# the later epochs' mixes: the same caps, other windows where a query has more than one (about half differ)
[ -s "$W/${MIXED}_e2.jsonl" ] || $PY -m perank mix-train-rows --seed 1 -o "$W/${MIXED}_e2.jsonl" "${MIX[@]}"
[ -s "$W/${MIXED}_e3.jsonl" ] || $PY -m perank mix-train-rows --seed 2 -o "$W/${MIXED}_e3.jsonl" "${MIX[@]}"
echo "$W/$MIXED.jsonl: $(wc -l < "$W/$MIXED.jsonl") windows" >&2
