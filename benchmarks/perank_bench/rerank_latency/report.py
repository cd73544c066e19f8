"""The benchmark's record: the JSON entries, the markdown table with the targets' ratios, and the plot.

Written after every configuration (marked partial), so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from perank_bench.plot import fmt, plot

logger = logging.getLogger(__name__)


def ratios(entries: list[dict[str, Any]]) -> list[tuple[str, float | None, str]]:
    """The ratios the targets are about: (description, value, target)."""
    by = {e["name"]: e for e in entries}

    def ratio(a: str, b: str, key: str, invert: bool = False) -> float | None:
        if a not in by or b not in by or not by[a].get(key) or not by[b].get(key):
            return None
        return by[b][key] / by[a][key] if invert else by[a][key] / by[b][key]

    rows = [
        (
            "listwise-text / pe-rank median latency (batch 1)",
            ratio("listwise-text", "pe-rank", "median_latency_s"),
            ">= 5",
        ),
        (
            "pe-rank greedy / single-pass median latency",
            ratio("pe-rank", "pe-rank-single-pass", "median_latency_s"),
            ">= 3",
        ),
        ("pe-rank batched / batch-1 queries per second", ratio("pe-rank-batched", "pe-rank", "queries_per_s"), ">= 2"),
        (
            "pe-rank whole prompts / shared-prefix reuse median latency",
            ratio("pe-rank-whole-prompts", "pe-rank", "median_latency_s"),
            "",
        ),
        (
            "pe-rank single-pass batched / batch-1 queries per second",
            ratio("pe-rank-single-pass-batched", "pe-rank-single-pass", "queries_per_s"),
            "",
        ),
        (
            "listwise-text-embedding / pe-rank median latency",
            ratio("listwise-text-embedding", "pe-rank", "median_latency_s"),
            "",
        ),
        (
            "listwise-text / pe-rank tokens processed per query",
            ratio("listwise-text", "pe-rank", "tokens_processed"),
            "",
        ),
    ]
    # the decode engines (only when both ran, so older records' tables stay as they were)
    for a, b, key, desc in (
        ("pe-rank-eager", "pe-rank", "median_latency_s", "pe-rank eager / auto-engine median latency (batch 1)"),
        ("pe-rank-batched", "pe-rank-batched-eager", "queries_per_s", "pe-rank batched auto-engine / eager q/s"),
    ):
        if a in by and b in by:
            rows.append((desc, ratio(a, b, key), ""))
    if "pe-rank" in by:
        rows.append(("pe-rank median latency, batch 1 (s)", by["pe-rank"]["median_latency_s"], "<= 0.5 on H100 7B"))
    best = max((e["queries_per_s"] for e in entries if e["reranker"] == "pe-rank"), default=None)
    if best is not None:
        rows.append(("pe-rank best queries per second", best, ">= 20 on H100 7B batched"))
    return rows


def decode_cell(config: dict[str, Any]) -> str:
    """The table's decode column: the mode, and the greedy engine where it is not the plain eager one."""
    mode = config["decode_mode"] or "generate"
    engine = config.get("decode_engine")
    return f"{mode} ({engine})" if engine and engine != "eager" and mode == "greedy" else mode


def markdown(entries: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The record's table: one row per configuration, the ratios, and the time breakdown when measured."""
    lines = [
        f"# Rerank latency ({meta['tag']})",
        "",
        f"{meta['when']}; {meta['machine']}; model: {meta['model']}; "
        f"dataset {meta['dataset']} BM25 top-{meta['topk']}, window {meta['window_size']} step {meta['step']}; "
        "warm-up query excluded; each configuration in its own process.",
        "",
        "| configuration | batch | decode | queries | median s/query | p90 s/query | queries/s | tokens processed | "
        "tokens generated | peak RSS MB | nDCG@10 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in entries:
        c = e["config"]
        lines.append(
            f"| {e['name']} | {c['batch_size']} | {decode_cell(c)} | {c['n_queries']} | "
            f"{fmt(e['median_latency_s'])} | {fmt(e['p90_latency_s'])} | {fmt(e['queries_per_s'])} | "
            f"{fmt(e['tokens_processed'], 0)} | {fmt(e['tokens_generated'], 1)} | {fmt(e['peak_rss_mb'], 0)} | "
            f"{fmt(e['ndcg_cut_10'], 4)} |"
        )
    if any("cuda_max_allocated_mb" in e for e in entries):
        lines += [
            "",
            "CUDA max allocated (MB): "
            + ", ".join(
                f"{e['name']} {e['cuda_max_allocated_mb']:,.0f}" for e in entries if "cuda_max_allocated_mb" in e
            ),
        ]
    lines += ["", "| ratio | value | target |", "| --- | --- | --- |"]
    lines += [f"| {d} | {fmt(v, 2)} | {t} |" for d, v, t in ratios(entries)]
    with_bd = [e for e in entries if e.get("breakdown_per_query_s")]
    if with_bd:
        lines += [
            "",
            "Where a query's time goes (seconds per query; hooks around the encoder and the LLM body):",
            "",
            "| configuration | encoder | LLM prefill | LLM decode steps | other (Python, projector, tokenising) | "
            "prefill calls | decode calls |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for e in with_bd:
            b = e["breakdown_per_query_s"]
            lines.append(
                f"| {e['name']} | {fmt(b['encoder_s'])} | {fmt(b['llm_prefill_s'])} | {fmt(b['llm_decode_s'])} | "
                f"{fmt(b['other_s'])} | {fmt(b['llm_prefill_calls'], 1)} | {fmt(b['llm_decode_calls'], 1)} |"
            )
    return "\n".join(lines) + "\n"


def write_outputs(
    entries: list[dict[str, Any]], failed: list[str], meta: dict[str, Any], stem: Path, final: bool
) -> str:
    """Write the JSON and markdown (after every configuration, so an interrupted run keeps what it measured)."""
    from perank.io import atomic_write

    with atomic_write(stem.with_suffix(".json")) as fh:
        fh.write(json.dumps(entries, indent=2) + "\n")
    md = markdown(entries, meta)
    if failed:
        md += f"\nFailed configurations: {', '.join(failed)}\n"
    if not final:
        md += "\n(partial: the run is still going or was interrupted)\n"
    with atomic_write(stem.with_suffix(".md")) as fh:
        fh.write(md)
    if entries and final:
        try:
            _plot_to(entries, stem, meta)
        except Exception as exc:  # the plot is a convenience: never lose the measurements over it
            logger.error("plot failed: %s", exc)
    return md


def _plot_to(entries: list[dict[str, Any]], stem: Path, meta: dict[str, Any]) -> None:
    """The plot next to the JSON, titled with what was run on what."""
    title = f"{meta['tag']}: {meta['dataset']} BM25 top-{meta['topk']}, {meta['model']}"
    plot(entries, stem.with_suffix(".png"), title)
