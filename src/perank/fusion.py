"""Fusing runs into one, and reordering a candidates file by a run.

- :func:`fuse`: reciprocal-rank fusion ``sum_i w_i / (k + rank_i)`` or interpolation of min-max-normalised scores
  ``sum_i w_i * norm_i``. A passage missing from one run gets that run's worst value (rank ``len+1``, normalised
  score 0), so a fused run covers the union of its inputs' candidates. :func:`tune_first_weight` grid-searches
  the first of two runs' weight on given qrels (never the held-out test's).
- :func:`fused_accounting`: the cost of a fused run is the cost of running every input, query by query, so it
  enters ``perank compare`` with the same columns as a reranked run.
- :func:`reorder`: a candidates file with each query's hits in the order of a run, which is how a stronger
  first stage is handed to a reranker (``evaluate.py --retrieval-results``).

Written here rather than taken from ranx: ranx would bring numba for two formulas of a few lines, and its RRF
gives a passage missing from a run nothing, where this one gives it the run's worst rank (what the teacher
fusion of ``checkpoints/README.md`` was tuned with).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from perank.accounting import summarize_per_query
from perank.types import Candidate, InputError, Query, Request

Run = dict[str, dict[str, float]]

#: the fusion methods :func:`fuse` knows
METHODS = ("rrf", "interp")


def ranks_of(scores: Mapping[str, float]) -> dict[str, int]:
    """1-based ranks by descending score (ties by docid, as trec_eval orders them)."""
    order = sorted(scores, key=lambda d: (-scores[d], d))
    return {d: i + 1 for i, d in enumerate(order)}


def normalised(scores: Mapping[str, float]) -> dict[str, float]:
    """Min-max normalised scores in [0, 1] (all equal -> all 1)."""
    lo, hi = min(scores.values()), max(scores.values())
    return {d: (s - lo) / (hi - lo) if hi > lo else 1.0 for d, s in scores.items()}


def fuse(runs: Sequence[Mapping[str, Mapping[str, float]]], weights: Sequence[float], method: str, k: int = 60) -> Run:
    """The fused run over the queries every run has (the union of each query's passages), queries sorted."""
    if method not in METHODS:
        raise InputError(f"unknown fusion method {method!r}; known: {', '.join(METHODS)}")
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


def tune_first_weight(
    runs: Sequence[Mapping[str, Mapping[str, float]]],
    method: str,
    score: Callable[[Run], float],
    k: int = 60,
    steps: int = 20,
    report: Callable[[float, float], None] | None = None,
) -> tuple[float, float]:
    """The weight ``w`` of the first of two runs (the second gets ``1 - w``) on a grid of ``steps + 1`` points in
    [0, 1] that maximises ``score(fused run)``, with that score; a tie keeps the smallest weight. ``report(w, s)``
    sees every point."""
    if len(runs) != 2:
        raise InputError("tuning sets the weight of the first of exactly two runs")
    best = (-1.0, 0.0)
    for i in range(steps + 1):
        w = i / steps
        value = score(fuse(runs, [w, 1 - w], method, k))
        if report is not None:
            report(w, value)
        if value > best[0]:
            best = (value, w)
    return best[1], best[0]


def fused_accounting(inputs: Sequence[Mapping[str, Any] | None], qids: Sequence[str]) -> dict[str, Any] | None:
    """The accounting of a fused run: each query's stats summed over the inputs' (``latency_s``, tokens, LLM calls:
    producing the fused ranking costs running every input). ``None`` when an input has no per-query accounting
    for one of ``qids`` (a TREC file from elsewhere): an unknown cost is shown as unknown, not as zero."""
    per_query: dict[str, dict[str, float]] = {}
    for qid in qids:
        total: dict[str, float] = {}
        for accounting in inputs:
            stats = ((accounting or {}).get("per_query") or {}).get(qid)
            if not isinstance(stats, dict):
                return None
            for key, value in stats.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    total[key] = total.get(key, 0) + value
        per_query[qid] = total
    return summarize_per_query(per_query)


def run_as_requests(run: Mapping[str, Mapping[str, float]]) -> list[Request]:
    """A run as requests (best first, ties by docid; no passage text), for :func:`perank.io.write_trec_run`."""
    return [
        Request(
            query=Query(qid=qid, text=""),
            candidates=[
                Candidate(docid=d, text="", score=scores[d], rank=r)
                for d, r in sorted(ranks_of(scores).items(), key=lambda item: item[1])
            ],
        )
        for qid, scores in run.items()
    ]


def reorder(candidates: Sequence[Request], run: Mapping[str, Mapping[str, float]]) -> list[Request]:
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
