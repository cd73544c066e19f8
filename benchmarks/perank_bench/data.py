"""The queries the benchmark times and how their rankings are scored (nDCG@10 against shipped qrels)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def load_requests(dataset: str, retrieval_results: str | None, topk: int, n: int) -> list[Any]:
    """The first ``n`` queries (cycling through the file when ``n`` exceeds it), top-``topk`` candidates each."""
    from perank.datasets import get_dataset
    from perank.io import read_retrieval_results
    from perank.types import Request

    path = retrieval_results or get_dataset(dataset).require("candidates_file")
    reqs = read_retrieval_results(path)
    reqs = [Request(query=r.query, candidates=r.candidates[:topk]) for r in reqs]
    return [reqs[i % len(reqs)] for i in range(n)]


def warmup_requests(requests: list[Any], n_queries: int, window_size: int, n_calls: int) -> tuple[list[Any], list[Any]]:
    """Split ``n_queries + 1`` loaded requests into (warm-up call, timed requests).

    Warming up needs every code path once (encoder, prefill, decode steps), not a whole top-100: one window
    of a query the timed ones do not start with, repeated ``n_calls`` times (a full batch for the batched
    configurations, so the warm-up has the timed calls' shapes).
    """
    from perank.types import Request

    warmup, timed = requests[-1:], requests[:-1]
    if n_queries > 1 and warmup[0].query.qid == timed[0].query.qid:
        warmup = timed[1:2]
    warm = Request(query=warmup[0].query, candidates=warmup[0].candidates[:window_size])
    return [warm] * min(n_calls, max(1, n_queries)), timed


def ndcg10(results: list[Any], dataset: str, qrels: str | None) -> float | None:
    """nDCG@10 of the results (each query once) against the dataset's shipped qrels; None without qrels."""
    from perank.datasets import get_dataset
    from perank.io import read_qrels
    from perank.metrics import evaluate_run

    path = qrels or get_dataset(dataset).local("qrels_file")
    if path is None or not Path(path).exists():
        return None
    run = {r.query.qid: {c.docid: float(c.score) for c in r.candidates} for r in results}
    try:
        return float(evaluate_run(run, read_qrels(path))["ndcg_cut_10"])
    except Exception as exc:  # a run of unjudged queries only
        logger.warning("nDCG@10 not computed: %s", exc)
        return None
