"""One family configuration, normally in its own fresh process: build, warm up, time each query, score.

Built through the registry exactly as ``perank-evaluate --reranker NAME -o key=value`` builds it; the queries,
warm-up, nDCG@10 and measures are the latency benchmark's (:mod:`perank_bench.data`, :mod:`perank_bench.measures`).
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any

from perank_bench.data import load_requests, ndcg10, warmup_requests
from perank_bench.measures import mean_stat, peak_rss_mb, percentile, stats_means

logger = logging.getLogger(__name__)


def build(spec: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The configuration's reranker and the options it took: the benchmark's ``--device`` is dropped for a
    family without that option (as the command line's shared options are); any other option it does not
    take is an error, as ``-o`` is."""
    from perank.ranking.registry import accepted_options, build_reranker

    options = dict(spec["options"])
    if spec.get("device"):
        options.setdefault("device", spec["device"])
    kwargs, dropped = accepted_options(spec["reranker"], options, passthrough=("device",))
    if dropped:
        logger.info("%s: the reranker takes no %s; left out", spec["name"], ", ".join(dropped))
    return build_reranker(spec["reranker"], **kwargs), kwargs


def run_family(spec: dict[str, Any]) -> dict[str, Any]:
    """Time ``spec["queries"]`` queries one per call after one warm-up call; the entry for the record.

    Gradients are off and the thread count is set only for the measurement, then restored: with
    ``--in-process`` (and in tests) the caller's torch state must not change.
    """
    import torch

    threads = torch.get_num_threads()
    try:
        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
        with torch.no_grad():
            return _measure(spec)
    finally:
        torch.set_num_threads(threads)


def _measure(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    from perank.backends.runtime import synchronize

    n = spec["queries"]
    loaded = load_requests(spec["dataset"], spec.get("retrieval_results"), spec["topk"], n + 1)
    warmup, requests = warmup_requests(loaded, n, window_size=20, n_calls=1)
    device = torch.device(spec.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))

    t0 = time.perf_counter()
    reranker, kwargs = build(spec)
    load_s = time.perf_counter() - t0
    reranker.rerank(warmup)
    synchronize(device)

    latencies: list[float] = []
    results: list[Any] = []
    t_all = time.perf_counter()
    for request in requests:
        t1 = time.perf_counter()
        results.extend(reranker.rerank([request]))
        synchronize(device)
        latencies.append(time.perf_counter() - t1)
    total_s = time.perf_counter() - t_all
    info = reranker.describe()
    return {
        "name": spec["name"],
        "reranker": spec["reranker"],
        "setting": spec["setting"],
        "config": {
            "batch_size": 1,
            "decode_mode": info.get("decode_mode"),
            "device": str(device),
            "n_queries": len(requests),
            "topk": spec["topk"],
            "dataset": spec["dataset"],
            "threads": torch.get_num_threads(),
            "options": {k: v for k, v in kwargs.items() if isinstance(v, str | int | float | bool | type(None))},
        },
        "describe": {k: v for k, v in info.items() if isinstance(v, str | int | float | bool | type(None))},
        "median_latency_s": statistics.median(latencies),
        "p90_latency_s": percentile(latencies, 90),
        "queries_per_s": len(requests) / total_s,
        "total_s": total_s,
        "tokens_processed": mean_stat(results, "tokens_processed"),
        "tokens_generated": mean_stat(results, "tokens_generated"),
        "peak_rss_mb": peak_rss_mb(),
        "ndcg_cut_10": ndcg10(results, spec["dataset"], spec.get("qrels")),
        "load_s": load_s,
        "stats_mean": stats_means(results),
    }
