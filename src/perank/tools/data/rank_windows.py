"""Build stage-2 (learning-to-rank) data: candidates + a teacher ranking -> train.jsonl windows.

Candidates come from retrieval results (``--retrieval-results``, JSONL or rank_llm JSON) or from the
package's embedded BM25 (bm25s with Lucene analysis, as ``--backend bm25s`` retrieves) over a BEIR corpus
(``--corpus`` + ``--topics``, for sets such as ArguAna that ship no run).
The teacher orders each query's candidates:

- ``qrels``: by judged grade (unjudged = 0), ties by first-stage rank (``--tie-break rank``) or by the dense
  encoder's cosine (``--tie-break dense``);
- ``dense``: by the cosine of the encoder's query and passage embeddings (distilling the dense reranker);
- ``run``: by a TREC run's scores (e.g. a stronger reranker); candidates missing from it go last;
- ``permutation``: a JSONL of ``{"qid", "docids": [...]}`` in teacher order (e.g. RankGPT output).

From each query, ``--windows-per-query`` windows of ``--window-size`` passages are drawn (deterministic with
``--seed``): the first is the first-stage top-n, the rest random subsets of the top ``--candidates-topk``.
Passages appear in first-stage order (``--input-order rank``, what sliding-window inference sees) or
shuffled (``shuffle``; use it when the first stage IS the teacher, or the model learns "keep the order").
Each row (schema in docs/training.md)::

    {"qid", "query", "messages_w_content", "messages_wo_content", "ranking", "extra_texts"}

``--forbid-qrels FILE`` refuses queries judged in FILE (pass DL19's qrels to guarantee the test set never
leaks into training).

A teacher too slow for whole candidate lists (ColBERT: ~1.8 s a query of 100 on a 2-core CPU) needs to score only
the passages the windows hold. The draws read no teacher, so two builds with the same candidates and window flags
draw the same windows: ``--candidates-only`` writes each query's drawn passages as retrieval results, any reranker
writes its TREC run over them (``evaluate.py --retrieval-results``), and ``--teacher run --run`` labels the
windows (``recipes/build_rank_mix.sh``, ``TEACHER=colbert``). A drawn passage the run does not score is counted
in a warning.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from perank.cli.errors import run_guarded
from perank.families.pe_rank.prompts import QUERY_EMBEDDING_POSITIONS, PromptSpec, messages
from perank.io import (
    atomic_write,
    read_corpus,
    read_qrels,
    read_retrieval_results,
    read_topics,
    write_retrieval_results,
)
from perank.retrieval.api import bm25s_batches, search_topics
from perank.retrieval.bm25s_backend import beir_passage_text, build_bm25s_index
from perank.training.holdout import refuse_judged
from perank.training.teachers import dense_scores  # shared with perank.tools.data.pair_groups
from perank.types import Candidate, Request


def bm25_requests(corpus: Path, topics: Path, topk: int, max_queries: int, seed: int) -> list[Request]:
    """The package's embedded BM25 (bm25s, Lucene analysis, k1=0.9, b=0.4) over a BEIR corpus, built in memory.

    Queries are shuffled with ``seed`` before ``max_queries`` are taken, so a subset is a random sample. A
    BEIR query can retrieve itself (ArguAna): its own document is dropped, as Pyserini's ``--remove-query``
    does. Title-less passages stay plain text, as in ``perank build-small-mix``.
    """
    docs = list(read_corpus(corpus))
    texts = {d: beir_passage_text(t, x) if t else x for d, t, x in docs}
    queries = list(read_topics(topics).items())
    random.Random(seed).shuffle(queries)
    if max_queries:
        queries = queries[:max_queries]
    index = build_bm25s_index(docs)
    return search_topics(
        dict(queries), bm25s_batches(index), lambda hit: texts[hit.docid], topk, remove_query=True, desc="bm25"
    )


def teacher_order(args: argparse.Namespace, requests: list[Request]) -> dict[str, list[str]]:
    """Each query's candidate docids in teacher order."""
    dense = None
    if args.teacher == "dense" or args.tie_break == "dense":
        dense = dense_scores(requests, args.encoder, args.encoder_max_length, args.embeddings)
    orders: dict[str, list[str]] = {}
    if args.teacher == "qrels":
        qrels = read_qrels(args.qrels)
        for r in requests:
            judged = qrels.get(r.query.qid, {})
            cos = dense[r.query.qid] if dense else {}

            def key(c: Candidate, judged: dict[str, int] = judged, cos: dict[str, float] = cos) -> tuple:
                return (-judged.get(c.docid, 0), -cos[c.docid] if cos else c.rank)

            orders[r.query.qid] = [c.docid for c in sorted(r.candidates, key=key)]
    elif args.teacher == "dense":
        for r in requests:
            orders[r.query.qid] = sorted((c.docid for c in r.candidates), key=lambda d: -dense[r.query.qid][d])
    elif args.teacher == "run":
        from perank.io import read_trec_run

        run = read_trec_run(args.run)
        for r in requests:
            s = run.get(r.query.qid, {})
            orders[r.query.qid] = [
                c.docid for c in sorted(r.candidates, key=lambda c: (c.docid not in s, -s.get(c.docid, 0.0), c.rank))
            ]
    else:
        perms: dict[str, list[str]] = {}
        with open(args.permutations, encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                if line.strip():
                    obj = json.loads(line)
                    if "qid" not in obj or "docids" not in obj:
                        raise SystemExit(f"{args.permutations}:{lineno}: expected {{'qid', 'docids'}}")
                    perms[str(obj["qid"])] = [str(d) for d in obj["docids"]]
        for r in requests:
            pos = {d: i for i, d in enumerate(perms.get(r.query.qid, []))}
            orders[r.query.qid] = [
                c.docid for c in sorted(r.candidates, key=lambda c: (pos.get(c.docid, len(pos)), c.rank))
            ]
    return orders


def draw_windows(request: Request, args: argparse.Namespace, rng: random.Random) -> list[list[Candidate]]:
    """The windows of one query, each in the order the model will see it (no teacher is read: the draws depend
    only on the candidates, the window flags and ``rng``, so a teacher that scores only the drawn passages, see
    ``--candidates-only``, labels the very windows a second build with the same flags draws)."""
    cands = request.candidates[: args.candidates_topk]
    n = min(args.window_size, len(cands))
    if n < 2:
        return []
    drawn = []
    seen: set[tuple[str, ...]] = set()
    for w in range(args.windows_per_query):
        chosen = list(range(n)) if w == 0 else sorted(rng.sample(range(len(cands)), n))
        if args.input_order == "shuffle":
            rng.shuffle(chosen)
        window = [cands[i] for i in chosen]
        key = tuple(c.docid for c in window)
        if key in seen:
            continue
        seen.add(key)
        drawn.append(window)
    return drawn


def drawn_candidates(request: Request, drawn: list[list[Candidate]]) -> Request:
    """``request`` with only the candidates its windows drew, in first-stage order (``--candidates-only``)."""
    docids = {c.docid for window in drawn for c in window}
    return Request(query=request.query, candidates=[c for c in request.candidates if c.docid in docids])


def windows(request: Request, drawn: list[list[Candidate]], order: list[str], args: argparse.Namespace) -> list[dict]:
    """The training rows of one query: its drawn windows, each with the teacher's ranking."""
    teacher_pos = {d: i for i, d in enumerate(order)}
    spec_kwargs = {
        "query_embedding": args.query_embedding,
        "query_embedding_position": args.query_embedding_position,
        "query_text": not args.no_query_text,
    }
    rows = []
    for window in drawn:
        n = len(window)
        ranking = sorted(range(n), key=lambda i: teacher_pos[window[i].docid])
        texts = [c.text for c in window]
        q = request.query.text
        rows.append(
            {
                "qid": request.query.qid,
                "query": q,
                "messages_w_content": messages(PromptSpec("text-embedding", **spec_kwargs), q, texts, True),
                "messages_wo_content": messages(PromptSpec("embedding", **spec_kwargs), q, texts, True),
                "ranking": ranking,
                "extra_texts": texts + [texts[i] for i in ranking],
            }
        )
    return rows


def warn_unscored(run_path: Path, requests: list[Request], drawn: list[list[list[Candidate]]]) -> None:
    """Say how many drawn window passages the run does not score (the run teacher ranks them last, in
    first-stage order): none when the run was made over ``--candidates-only``'s output of the same flags."""
    from perank.io import read_trec_run

    run = read_trec_run(run_path)
    passages = [(r.query.qid, c.docid) for r, d in zip(requests, drawn) for window in d for c in window]
    missing = sum(docid not in run.get(qid, {}) for qid, docid in passages)
    if missing:
        print(
            f"warning: {missing} of the {len(passages)} window passages have no score in {run_path} "
            "(ranked last, in first-stage order)",
            file=sys.stderr,
        )


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="perank build-rank-data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    src = ap.add_argument_group("candidates")
    src.add_argument("--retrieval-results", type=Path, help="retrieval results JSONL / rank_llm JSON")
    src.add_argument("--corpus", type=Path, help="BEIR corpus JSONL(.gz), with --topics: embedded BM25 (bm25s)")
    src.add_argument("--topics", type=Path, help="topics (TSV or BEIR queries JSONL)")
    src.add_argument("--max-queries", type=int, default=0, help="use at most this many queries (0 = all)")
    src.add_argument("--candidates-topk", type=int, default=100)
    t = ap.add_argument_group("teacher")
    t.add_argument(
        "--teacher", choices=("qrels", "dense", "run", "permutation"), help="required unless --candidates-only"
    )
    t.add_argument("--qrels", type=Path)
    t.add_argument("--run", type=Path)
    t.add_argument("--permutations", type=Path)
    t.add_argument("--tie-break", choices=("rank", "dense"), default="rank", help="qrels teacher ties")
    t.add_argument("--judged-only", action="store_true", help="qrels teacher: skip queries without judgments")
    t.add_argument("--encoder", default="all-minilm-l6-v2", help="dense teacher / tie-break encoder")
    t.add_argument("--encoder-max-length", type=int, default=256)
    t.add_argument("--embeddings", type=Path, help="encoder-embedding cache file to read and extend (.pt)")
    w = ap.add_argument_group("windows")
    w.add_argument("--window-size", type=int, default=20)
    w.add_argument("--windows-per-query", type=int, default=4)
    w.add_argument("--input-order", choices=("rank", "shuffle"), default="rank")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--query-embedding", action="store_true", help="prompts with the query-embedding token")
    w.add_argument(
        "--query-embedding-position", choices=QUERY_EMBEDDING_POSITIONS, default="prompt", help="where that token goes"
    )
    w.add_argument(
        "--no-query-text", action="store_true", help="prompts without the query's text (needs --query-embedding)"
    )
    w.add_argument(
        "--candidates-only",
        action="store_true",
        help="write to -o, instead of rows, each query's candidates that its windows draw (retrieval-results JSONL, "
        "first-stage order; no teacher): the input of a teacher run that scores only them, which a second build "
        "with the same flags and --teacher run --run FILE then reads",
    )
    ap.add_argument("--forbid-qrels", type=Path, action="append", default=[], help="refuse queries judged here")
    ap.add_argument("--output", "-o", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.candidates_only and args.teacher:
        ap.error("--candidates-only draws windows without a teacher: drop --teacher")
    if not args.candidates_only and not args.teacher:
        ap.error("give --teacher (or --candidates-only)")

    if args.retrieval_results:
        requests = read_retrieval_results(args.retrieval_results)
        if args.max_queries:
            requests = requests[: args.max_queries]
    elif args.corpus and args.topics:
        requests = bm25_requests(args.corpus, args.topics, args.candidates_topk, args.max_queries, args.seed)
    else:
        ap.error("give --retrieval-results, or --corpus with --topics")
    needed = {"qrels": args.qrels, "run": args.run, "permutation": args.permutations}.get(args.teacher, True)
    if not args.candidates_only and not needed:
        ap.error(
            f"--teacher {args.teacher} needs --{'permutations' if args.teacher == 'permutation' else args.teacher}"
        )
    for path in args.forbid_qrels:
        refuse_judged(requests, path)
    if args.teacher == "qrels" and args.judged_only:
        judged = set(read_qrels(args.qrels))
        requests = [r for r in requests if r.query.qid in judged]
    rng = random.Random(args.seed)
    drawn = [draw_windows(r, args, rng) for r in requests]
    if args.candidates_only:
        kept = [drawn_candidates(r, d) for r, d in zip(requests, drawn) if d]
        write_retrieval_results(args.output, kept)
        passages = sum(len(r.candidates) for r in kept)
        print(
            f"wrote the {passages} candidates ({passages / max(len(kept), 1):.1f} a query) that "
            f"{sum(map(len, drawn))} windows draw from {len(kept)} queries to {args.output}",
            file=sys.stderr,
        )
        return 0
    orders = teacher_order(args, requests)
    if args.teacher == "run":
        warn_unscored(args.run, requests, drawn)
    rows = [row for r, d in zip(requests, drawn) for row in windows(r, d, orders[r.query.qid], args)]
    with atomic_write(args.output) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} windows from {len(requests)} queries to {args.output}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``perank build-rank-data``: :func:`run`, bad input or an unreadable file as one line and exit status 2."""
    return run_guarded(lambda: run(argv))
