#!/usr/bin/env python
"""Fuse TREC runs (reciprocal-rank or normalised-score interpolation) and reorder a candidates file by a run.

Two uses, both for building and checking teachers (checkpoints/README.md, issue "PE-Rank above its teacher"):

- ``fuse``: one run from several, by reciprocal-rank fusion ``sum_i w_i / (k + rank_i)`` or by interpolating
  min-max-normalised scores ``sum_i w_i * norm_i``. A passage missing from one run gets that run's worst value
  (rank ``len+1``, normalised score 0), so fused runs cover the union of candidates. ``--tune-qrels`` grid-searches
  the weight of the first run on the given qrels (never DL19's: the held-out test) and prints each point.
- ``reorder``: a candidates file (retrieval JSONL) with each query's hits in the order of a run, scores from it;
  this is how a stronger first stage is handed to a reranker (``evaluate.py --retrieval-results out.jsonl``).

    python scripts/fuse_runs.py fuse --method rrf A.trec B.trec -o fused.trec
    python scripts/fuse_runs.py fuse --method interp A.trec B.trec --tune-qrels dl20.qrels -o fused.trec
    python scripts/fuse_runs.py reorder --candidates bm25_dl19_top100.jsonl --run dense.trec -o dense_order.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from perank.cli.errors import run_guarded  # noqa: E402  (InputError/OSError: one line, exit 2)
from perank.types import Candidate, InputError, Request  # noqa: E402

Run = dict[str, dict[str, float]]


def ranks_of(scores: dict[str, float]) -> dict[str, int]:
    """1-based ranks by descending score (ties by docid, as trec_eval orders them)."""
    order = sorted(scores, key=lambda d: (-scores[d], d))
    return {d: i + 1 for i, d in enumerate(order)}


def normalised(scores: dict[str, float]) -> dict[str, float]:
    """Min-max normalised scores in [0, 1] (all equal -> all 1)."""
    lo, hi = min(scores.values()), max(scores.values())
    return {d: (s - lo) / (hi - lo) if hi > lo else 1.0 for d, s in scores.items()}


def fuse(runs: list[Run], weights: list[float], method: str, k: int = 60) -> Run:
    """The fused run over the queries every run has (the union of each query's passages)."""
    if len(weights) != len(runs):
        raise InputError(f"{len(weights)} weights for {len(runs)} runs")
    qids = set(runs[0]).intersection(*runs[1:])
    if not qids:
        raise InputError("the runs share no query")
    fused: Run = {}
    for qid in sorted(qids):
        docs = set().union(*(run[qid] for run in runs))
        total = dict.fromkeys(docs, 0.0)
        for run, w in zip(runs, weights):
            if method == "rrf":
                ranks = ranks_of(run[qid])
                worst = len(ranks) + 1
                for d in docs:
                    total[d] += w / (k + ranks.get(d, worst))
            else:
                norm = normalised(run[qid])
                for d in docs:
                    total[d] += w * norm.get(d, 0.0)
        fused[qid] = total
    return fused


def ndcg10(run: Run, qrels_path: Path) -> float:
    from perank.io import read_qrels
    from perank.metrics import evaluate_run

    return float(evaluate_run(run, read_qrels(qrels_path))["ndcg_cut_10"])


def write_run(path: Path, run: Run, tag: str) -> None:
    from perank.io import atomic_write

    with atomic_write(path) as handle:
        for qid, scores in run.items():
            for rank, d in enumerate(sorted(scores, key=lambda x: (-scores[x], x)), start=1):
                handle.write(f"{qid} Q0 {d} {rank} {scores[d]:.10g} {tag}\n")


def reorder(candidates: list[Request], run: Run) -> list[Request]:
    """Each request's candidates in the run's order (scores from the run); every candidate must be in the run."""
    out = []
    for request in candidates:
        scores = run.get(request.query.qid)
        if scores is None:
            raise InputError(f"query {request.query.qid} is in the candidates but not in the run")
        missing = [c.docid for c in request.candidates if c.docid not in scores]
        if missing:
            raise InputError(f"query {request.query.qid}: {len(missing)} candidates not in the run, e.g. {missing[0]}")
        order = sorted(request.candidates, key=lambda c: (-scores[c.docid], c.docid))
        hits = [Candidate(docid=c.docid, text=c.text, score=scores[c.docid], rank=i + 1) for i, c in enumerate(order)]
        out.append(Request(query=request.query, candidates=hits))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fuse", help="fuse runs")
    f.add_argument("runs", nargs="+", type=Path)
    f.add_argument("--method", choices=("rrf", "interp"), default="rrf")
    f.add_argument("--weights", type=float, nargs="+", help="one per run (default: all 1)")
    f.add_argument("--rrf-k", type=int, default=60)
    f.add_argument("--tune-qrels", type=Path, help="grid-search the first run's weight (0..1) on these qrels")
    f.add_argument("--tag", default="fused")
    f.add_argument("-o", "--output", type=Path, required=True)
    r = sub.add_parser("reorder", help="reorder a candidates file by a run")
    r.add_argument("--candidates", type=Path, required=True)
    r.add_argument("--run", type=Path, required=True)
    r.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)

    from perank.io import read_retrieval_results, read_trec_run, write_retrieval_results

    if args.command == "reorder":
        write_retrieval_results(args.output, reorder(read_retrieval_results(args.candidates), read_trec_run(args.run)))
        print(f"wrote {args.output}")
        return 0
    if len(args.runs) < 2:
        raise InputError("fuse needs at least two runs")
    runs = [read_trec_run(p) for p in args.runs]
    weights = args.weights or [1.0] * len(runs)
    if args.tune_qrels:
        if len(runs) != 2:
            raise InputError("--tune-qrels tunes the weight of the first of exactly two runs")
        best = (-1.0, 0.0)
        for i in range(21):
            w = i / 20
            score = ndcg10(fuse(runs, [w, 1 - w], args.method, args.rrf_k), args.tune_qrels)
            print(f"w={w:.2f} nDCG@10={score:.4f}")
            if score > best[0]:  # the first (smallest) weight of a tie
                best = (score, w)
        weights = [best[1], 1 - best[1]]
        print(f"best w={best[1]:.2f} ({best[0]:.4f} on {args.tune_qrels})")
    write_run(args.output, fuse(runs, weights, args.method, args.rrf_k), args.tag)
    print(f"wrote {args.output} (weights {weights})")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_guarded(main))
