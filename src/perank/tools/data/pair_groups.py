"""Build FlagEmbedding-style query-group training data (cross-encoder, ColBERT, ListConRanker) from candidates.

Reads existing candidate lists (retrieval-results JSONL or rank_llm JSON: e.g.
``data/msmarco-passage/retrieve_results_dl20.json``, or ``work_train/arguana_train.jsonl`` /
``work_train/mixed.jsonl`` from ``perank build-small-mix``) and writes one group per query::

    {"qid", "query", "pos": [...], "neg": [...], "pos_scores": [...], "neg_scores": [...]}

(``perank.training.pairs`` reads it; the scores are teacher scores for distillation). The teacher decides:

- ``qrels``: positives are the candidates judged at or above ``--min-grade``, negatives the other candidates
  (judged lower or unjudged); ``--teacher-scores`` adds the grades (unjudged = 0) as scores;
- ``dense``: the packaged MiniLM cosine (the ``dense`` reranker): positives are its top ``--positives``,
  negatives drawn from the rest; the cosines are the scores;
- ``run FILE``: a TREC run's scores (e.g. a stronger reranker's): positives its top ``--positives``, negatives
  drawn from the rest; candidates the run does not score are left out (they have no teacher score).

At most ``--max-negatives`` negatives are kept per query, drawn with a generator seeded by ``--seed`` and the
qid (a query's group does not depend on which other queries are in the file); they stay in first-stage order.
A negative whose text equals a positive's is dropped (duplicate passages under two docids), and so are
empty passages. Queries left without a positive or without a negative are skipped and counted.

The test set never leaks: ``--forbid-qrels FILE`` refuses any query whose qid is judged in FILE (pass DL19's
qrels), and a query whose text is a DL19 topic's (or a ``--forbid-topics FILE`` topic's) is refused under
any qid, as ``perank build-rank-data`` and ``perank build-small-mix`` do.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from perank.cli.errors import run_guarded
from perank.io import atomic_write, read_qrels, read_retrieval_results, read_trec_run
from perank.training.holdout import dl19_topics_path, held_out_texts, refuse_held_out_texts, refuse_judged
from perank.training.teachers import dense_scores  # shared with perank.tools.data.rank_windows
from perank.types import Candidate, InputError, Request

# per query: (positive candidates, candidates that may be negatives, teacher score per docid or None)
Split = tuple[list[Candidate], list[Candidate], dict[str, float] | None]


def split_by_qrels(request: Request, judged: dict[str, int], min_grade: int, scores: bool) -> Split:
    """Positives judged at or above ``min_grade``; every other candidate (unjudged included) may be negative."""
    pos = [c for c in request.candidates if judged.get(c.docid, 0) >= min_grade]
    rest = [c for c in request.candidates if judged.get(c.docid, 0) < min_grade]
    grades = {c.docid: float(judged.get(c.docid, 0)) for c in request.candidates} if scores else None
    return pos, rest, grades


def split_by_scores(request: Request, scores: dict[str, float], positives: int) -> Split:
    """The teacher's top ``positives`` (ties by first-stage rank); the rest, in first-stage order, may be negative.

    Candidates without a teacher score are left out.
    """
    scored = [c for c in request.candidates if c.docid in scores]
    top = sorted(range(len(scored)), key=lambda i: (-scores[scored[i].docid], i))[:positives]
    chosen = set(top)
    pos = [scored[i] for i in sorted(top)]
    rest = [c for i, c in enumerate(scored) if i not in chosen]
    return pos, rest, {c.docid: scores[c.docid] for c in scored}


def group_row(request: Request, split: Split, max_negatives: int, seed: int) -> dict | None:
    """One FlagEmbedding row, or None when the query has no positive or no negative left."""
    pos, rest, scores = split
    pos = [c for c in pos if c.text.strip()]
    pos_texts = {c.text for c in pos}
    rest = [c for c in rest if c.text.strip() and c.text not in pos_texts]
    if not pos or not rest:
        return None
    if max_negatives and len(rest) > max_negatives:
        rng = random.Random(f"{seed}:{request.query.qid}")
        rest = [rest[i] for i in sorted(rng.sample(range(len(rest)), max_negatives))]
    row: dict = {
        "qid": request.query.qid,
        "query": request.query.text,
        "pos": [c.text for c in pos],
        "neg": [c.text for c in rest],
    }
    if scores is not None:
        row["pos_scores"] = [scores[c.docid] for c in pos]
        row["neg_scores"] = [scores[c.docid] for c in rest]
    return row


def splits(args: argparse.Namespace, requests: list[Request]) -> dict[str, Split]:
    """Each query's positives, negative pool and teacher scores (queries the teacher does not know are absent)."""
    if args.teacher == "qrels":
        qrels = read_qrels(args.qrels)
        return {
            r.query.qid: split_by_qrels(r, qrels.get(r.query.qid, {}), args.min_grade, args.teacher_scores)
            for r in requests
        }
    if args.teacher == "dense":
        scores = dense_scores(requests, args.encoder, args.encoder_max_length, args.embeddings)
    else:
        scores = read_trec_run(args.run)
    return {
        r.query.qid: split_by_scores(r, scores[r.query.qid], args.positives) for r in requests if r.query.qid in scores
    }


def check_args(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options that only make sense with another one are errors, not silently ignored."""
    needs = {"qrels": ("--qrels", args.qrels), "run": ("--run", args.run)}
    if args.teacher in needs and needs[args.teacher][1] is None:
        ap.error(f"--teacher {args.teacher} needs {needs[args.teacher][0]}")
    # option -> the teachers that read it (dense and run always write their scores; with qrels every
    # judged-relevant candidate is a positive)
    owners = {
        "qrels": ("qrels",),
        "min_grade": ("qrels",),
        "teacher_scores": ("qrels",),
        "run": ("run",),
        "positives": ("dense", "run"),
        "encoder": ("dense",),
        "encoder_max_length": ("dense",),
        "embeddings": ("dense",),
    }
    for name, teachers in owners.items():
        if getattr(args, name) not in (None, False) and args.teacher not in teachers:
            ap.error(f"--{name.replace('_', '-')} is for --teacher {'/'.join(teachers)}")
    args.min_grade = 1 if args.min_grade is None else args.min_grade
    args.positives = 1 if args.positives is None else args.positives
    args.encoder = args.encoder or "all-minilm-l6-v2"
    args.encoder_max_length = args.encoder_max_length or 256
    if args.positives < 1 or args.max_negatives < 0 or args.candidates_topk < 1 or args.max_queries < 0:
        ap.error("--positives and --candidates-topk must be at least 1, --max-negatives and --max-queries at least 0")


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="perank build-pair-data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--retrieval-results", type=Path, required=True, help="candidates: results JSONL / rank_llm JSON")
    ap.add_argument("--max-queries", type=int, default=0, help="use the first N queries (0 = all)")
    ap.add_argument("--candidates-topk", type=int, default=100, help="use each query's first N candidates")
    t = ap.add_argument_group("teacher")
    t.add_argument("--teacher", choices=("qrels", "dense", "run"), required=True)
    t.add_argument("--qrels", type=Path, help="qrels teacher: the judgments")
    t.add_argument("--min-grade", type=int, help="qrels teacher: lowest grade that is a positive (default 1)")
    t.add_argument("--teacher-scores", action="store_true", help="qrels teacher: write the grades as scores")
    t.add_argument("--run", type=Path, help="run teacher: a TREC run scoring the candidates")
    t.add_argument("--positives", type=int, help="dense/run teacher: its top N are the positives (default 1)")
    t.add_argument("--encoder", help="dense teacher encoder (default all-minilm-l6-v2)")
    t.add_argument("--encoder-max-length", type=int, help="dense teacher encoder truncation (default 256)")
    t.add_argument("--embeddings", type=Path, help="encoder-embedding cache file to read and extend (.pt)")
    ap.add_argument("--max-negatives", type=int, default=15, help="negatives kept per query (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--forbid-qrels", type=Path, action="append", default=[], help="refuse queries judged here")
    ap.add_argument(
        "--forbid-topics", type=Path, action="append", default=[], help="refuse these query texts (DL19's always)"
    )
    ap.add_argument("--output", "-o", type=Path, required=True)
    args = ap.parse_args(argv)
    check_args(ap, args)

    requests = read_retrieval_results(args.retrieval_results)
    if args.max_queries:
        requests = requests[: args.max_queries]
    requests = [Request(r.query, r.candidates[: args.candidates_topk]) for r in requests]
    for path in args.forbid_qrels:
        refuse_judged(requests, path)
    dl19 = dl19_topics_path()
    refuse_held_out_texts(
        requests, held_out_texts(([dl19] if dl19 else []) + args.forbid_topics), args.retrieval_results
    )
    by_qid = splits(args, requests)
    rows, unknown = [], 0
    for r in requests:
        if r.query.qid not in by_qid:
            unknown += 1
            continue
        row = group_row(r, by_qid[r.query.qid], args.max_negatives, args.seed)
        if row is not None:
            rows.append(row)
    if not rows:
        raise InputError(f"{args.retrieval_results}: no query has both a positive and a negative with this teacher")
    with atomic_write(args.output) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    skipped = len(requests) - unknown - len(rows)
    absent = f", {unknown} not in the run" if unknown else ""
    print(
        f"wrote {len(rows)} groups from {len(requests)} queries to {args.output} "
        f"({skipped} skipped: no positive or no negative{absent})",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``perank build-pair-data``: :func:`run`, bad input or an unreadable file as one line and exit status 2."""
    return run_guarded(lambda: run(argv))
