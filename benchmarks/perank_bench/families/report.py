"""The families record: JSON entries, a markdown table (with what was skipped or failed, and why), the plot.

The plot is the latency benchmark's (:func:`perank_bench.plot.plot`: nDCG@10 against seconds per query, log x).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from perank_bench.plot import fmt, plot


def model_calls(entry: dict[str, Any]) -> float | None:
    """Model prompts per query: the prompt rankers' ``llm_calls``, a listwise family's ``windows`` (one prompt
    each); ``None`` (shown as a dash) for families that count neither (pointwise: one pass per candidate)."""
    stats = entry.get("stats_mean") or {}
    value = stats.get("llm_calls", stats.get("windows"))
    return None if value is None else float(value)


def markdown(entries: list[dict[str, Any]], meta: dict[str, Any], not_run: dict[str, str]) -> str:
    """One row per configuration that ran; then those that did not, each with its reason."""
    lines = [
        f"# Every family on {meta['dataset']} ({meta['tag']})",
        "",
        f"{meta['when']}; {meta['machine']}; {meta['dataset']} BM25 top-{meta['topk']}, {meta['queries']} queries, "
        "one query per call after one warm-up call; each configuration in its own process unless --in-process.",
        "",
        "| configuration | family | setting | queries | median s/query | p90 s/query | queries/s | LLM calls/query "
        "| tokens processed | tokens generated | peak RSS MB | nDCG@10 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in entries:
        lines.append(
            f"| {e['name']} | {e['reranker']} | {e['setting']} | {e['config']['n_queries']} | "
            f"{fmt(e['median_latency_s'])} | {fmt(e['p90_latency_s'])} | {fmt(e['queries_per_s'])} | "
            f"{fmt(model_calls(e), 1)} | {fmt(e['tokens_processed'], 0)} | {fmt(e['tokens_generated'], 1)} | "
            f"{fmt(e['peak_rss_mb'], 0)} | {fmt(e['ndcg_cut_10'], 4)} |"
        )
    if not_run:
        lines += ["", "Not run:", ""]
        lines += [f"- `{name}`: {reason}" for name, reason in not_run.items()]
    return "\n".join(lines) + "\n"


def write_outputs(
    entries: list[dict[str, Any]], not_run: dict[str, str], meta: dict[str, Any], stem: Path, final: bool
) -> str:
    """JSON (``{"run": meta, "entries": [...], "not_run": {...}}``), markdown and, at the end, the plot."""
    from perank.io import atomic_write

    with atomic_write(stem.with_suffix(".json")) as fh:
        fh.write(json.dumps({"run": meta, "entries": entries, "not_run": not_run}, indent=2) + "\n")
    md = markdown(entries, meta, not_run)
    if not final:
        md += "\n(partial: the run is still going or was interrupted)\n"
    with atomic_write(stem.with_suffix(".md")) as fh:
        fh.write(md)
    if entries and final:
        title = f"{meta['tag']}: every family, {meta['dataset']} BM25 top-{meta['topk']}, {meta['queries']} queries"
        plot(entries, stem.with_suffix(".png"), title)
    return md
