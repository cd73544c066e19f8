"""One configuration, normally in its own fresh process: build the reranker, warm it up, time it, measure it.

The reranker is built through the public registry (``perank.ranking.registry``) exactly as
``perank-evaluate --reranker NAME`` builds it, so the benchmark times what users run.
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any

from perank_bench.data import load_requests, ndcg10, warmup_requests
from perank_bench.measures import mean_stat, peak_rss_mb, percentile, stats_means
from perank_bench.paths import short_path
from perank_bench.rerank_latency.breakdown import Breakdown, profile_top_ops
from perank_bench.rerank_latency.configs import CONFIG_KWARGS, CONFIGS, TEXT_RERANKERS
from perank_bench.rerank_latency.models import find_perank_model
from perank_bench.rerank_latency.synthetic import SyntheticModels

logger = logging.getLogger(__name__)


def reranker_options(spec: dict[str, Any], dtype: Any, models: SyntheticModels) -> dict[str, Any]:
    """The constructor keywords of the configuration ``spec["name"]``, before the reranker's filtering."""
    name = spec["name"]
    reranker_name, decode_mode, batched = CONFIGS[name]
    kwargs: dict[str, Any] = {
        "device": spec["device"],
        "dtype": dtype,
        "batch_size": spec["batch_size"] if batched else 1,
        "window_size": spec["window_size"],
        "step": spec["step"],
    }
    if decode_mode is not None:
        kwargs["decode_mode"] = decode_mode
    if spec.get("synthetic"):
        model = models.get(spec, dtype)
        if reranker_name == "listwise-text":
            from perank.backends.hf_lm import HFLanguageModel

            kwargs.update(lm=HFLanguageModel(model.llm, model.tokenizer, name=model.config.llm_name))
            # random weights never emit end-of-sequence, so the answer length is fixed: make it a real one's
            # ("[12] > " is about 5 tokens, so about 5 per passage)
            kwargs["max_new_tokens"] = spec.get("text_max_new_tokens") or 5 * spec["window_size"]
        else:
            kwargs["model"] = model
        kwargs["model_path"] = model.config.llm_name
    else:
        kwargs["model_path"] = spec["text_model_path"] if reranker_name == "listwise-text" else spec["model_path"]
        if reranker_name == "listwise-text" and spec.get("text_max_new_tokens"):
            kwargs["max_new_tokens"] = spec["text_max_new_tokens"]
    if name == "pe-rank-cached":
        kwargs["embedding_cache"] = spec["embedding_cache"]
    kwargs.update(CONFIG_KWARGS.get(name, {}))
    return kwargs


def build_configured_reranker(spec: dict[str, Any], dtype: Any, models: SyntheticModels) -> tuple[Any, dict]:
    """The configuration's reranker from the registry, and the keywords it was built with.

    Options the reranker does not declare are left out with a warning, as ``-o key=value`` is on the command
    line; but synthetic mode cannot work without handing over the in-memory model, so losing it is an error.
    """
    from perank.ranking.registry import accepted_options, available_rerankers, build_reranker, get_reranker_class

    reranker_name = CONFIGS[spec["name"]][0]
    if get_reranker_class(reranker_name) is None:
        raise SystemExit(f"reranker {reranker_name!r} is not registered (known: {', '.join(available_rerankers())})")
    kwargs, dropped = accepted_options(reranker_name, reranker_options(spec, dtype, models))
    if dropped:
        logger.warning("%s: the reranker does not accept %s; left out", spec["name"], ", ".join(dropped))
    if spec.get("synthetic") and ({"model", "llm"} & set(dropped)):
        raise SystemExit(f"{reranker_name} does not accept an in-memory model, which synthetic mode needs")
    return build_reranker(reranker_name, **kwargs), kwargs


def run_config(spec: dict[str, Any], models: SyntheticModels | None = None) -> dict[str, Any]:
    """Build the reranker of one configuration, warm it up, time it, and return its entry.

    ``models`` lets an ``--in-process`` run build its synthetic model once for every configuration.
    """
    import torch

    threads = torch.get_num_threads()  # gradients off and threads set for the measurement only (--in-process)
    try:
        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
        with torch.no_grad():
            return _measure_config(spec, models)
    finally:
        torch.set_num_threads(threads)


def _measure_config(spec: dict[str, Any], models: SyntheticModels | None) -> dict[str, Any]:
    import torch

    from perank.backends.runtime import default_dtype, parse_dtype, synchronize

    name = spec["name"]
    reranker_name, decode_mode, batched = CONFIGS[name]
    device = spec["device"]
    torch_device = torch.device(device)
    dtype = parse_dtype(spec["dtype"]) or default_dtype(device)
    batch_size = spec["batch_size"] if batched else 1
    n_queries = spec["text_queries"] if reranker_name in TEXT_RERANKERS else spec["queries"]
    loaded = load_requests(spec["dataset"], spec.get("retrieval_results"), spec["topk"], n_queries + 1)
    warmup, requests = warmup_requests(loaded, n_queries, spec["window_size"], batch_size)

    t_load = time.perf_counter()
    reranker, kwargs = build_configured_reranker(spec, dtype, models or SyntheticModels())
    pe_model = find_perank_model(reranker)
    if name == "pe-rank-cached" and pe_model is not None and getattr(pe_model.encoder, "cache", None) is None:
        from perank.backends.embedding_cache import EmbeddingCache

        pe_model.encoder.cache = EmbeddingCache(spec["embedding_cache"])
    load_s = time.perf_counter() - t_load

    breakdown = None
    want_breakdown = spec.get("breakdown")
    if want_breakdown is None:  # hooks synchronise, which distorts GPU timings: only on request there
        want_breakdown = torch_device.type != "cuda"
    if pe_model is not None and want_breakdown:
        breakdown = Breakdown(pe_model, device)

    # warm-up: one query (for the cached configuration, the timed queries' passages also fill the cache)
    if name == "pe-rank-cached" and pe_model is not None:
        pe_model.encoder.encode([c.text for r in requests for c in r.candidates], batch_size=64)
    reranker.rerank(warmup)
    synchronize(torch_device)
    if torch_device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if breakdown is not None:
        breakdown.reset()

    latencies: list[float] = []
    results: list[Any] = []
    t_all = time.perf_counter()
    for start in range(0, len(requests), batch_size):
        batch = requests[start : start + batch_size]
        t0 = time.perf_counter()
        out = reranker.rerank(batch)
        synchronize(torch_device)
        dt = time.perf_counter() - t0
        latencies.extend([dt] * len(batch))
        results.extend(out)
    total_s = time.perf_counter() - t_all

    actual_dtype = str(getattr(pe_model, "dtype", dtype)).removeprefix("torch.")
    entry: dict[str, Any] = {
        "name": name,
        "reranker": reranker_name,
        "config": {
            "batch_size": batch_size,
            "decode_mode": decode_mode,
            "device": device,
            "dtype": actual_dtype,
            "n_queries": len(requests),
            "topk": spec["topk"],
            "window_size": spec["window_size"],
            "step": spec["step"],
            "model": f"synthetic {spec['synthetic']}" if spec.get("synthetic") else short_path(kwargs["model_path"]),
            "threads": torch.get_num_threads(),
            "max_new_tokens": kwargs.get("max_new_tokens"),
            "reuse_prefix": getattr(reranker, "reuse_prefix", None),
            "decode_engine": getattr(reranker, "decode_engine", None),
            "dataset": spec["dataset"],
        },
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
    if torch_device.type == "cuda":
        entry["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if breakdown is not None:
        entry["breakdown_per_query_s"] = breakdown.report(total_s, len(requests))
    if spec.get("profile") and pe_model is not None:
        entry["profile_top_ops"] = profile_top_ops(reranker, requests[: max(1, min(3, len(requests)))], device)
    return entry
