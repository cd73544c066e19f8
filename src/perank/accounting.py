"""Per-query accounting of a run: the numeric stats each reranker reports, with totals, means and medians.

Written beside every run (the metrics JSON's ``accounting``), so cost compares across families: LLM calls,
prompt and generated tokens, latency, truncations and parser repairs; and, for the sliding-window families, how
many windows the model returned in their input order (:func:`window_counts`).
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from perank.ranking.budgets import TokenBudget
from perank.types import Result

#: accounting keys reported for every run, even by rerankers that do not set them
CORE_STATS = ("latency_s", "tokens_processed", "tokens_generated")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(float(value))


def summarize_stats(results: Iterable[Result]) -> dict[str, Any]:
    """Per-query numeric stats plus their totals, means and medians.

    ``latency_s``, ``tokens_processed`` and ``tokens_generated`` are always reported (0 when a reranker does
    not count them); any other numeric key a reranker sets (``parse_repairs``, ``truncated_passages``, ...)
    is summed over the queries that report it. Booleans count as 0/1.
    """
    per_query: dict[str, dict[str, float]] = {}
    for result in results:
        stats = {k: v for k, v in result.stats.items() if _is_number(v)}
        per_query[result.query.qid] = {k: (int(v) if isinstance(v, bool) else v) for k, v in stats.items()}
    return summarize_per_query(per_query)


def summarize_per_query(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """The accounting of a run from its per-query stats (``{qid: {key: number}}``): totals, means, medians.

    Shared by reranked runs and fused ones (whose per-query cost is the sum of their inputs'), so both have
    the one layout that ``perank compare`` reads.
    """
    per_query = {qid: {**dict.fromkeys(CORE_STATS, 0), **stats} for qid, stats in per_query.items()}
    keys = list(CORE_STATS) + sorted({k for s in per_query.values() for k in s} - set(CORE_STATS))
    totals, means, medians = {}, {}, {}
    for key in keys:
        values = [s[key] for s in per_query.values() if key in s]
        totals[key] = sum(values)
        means[key] = statistics.fmean(values) if values else 0.0
        medians[key] = statistics.median(values) if values else 0.0
    return {"num_queries": len(per_query), "totals": totals, "means": means, "medians": medians, "per_query": per_query}


def peak_memory_mb() -> dict[str, float]:
    """This process's peak memory so far, in MiB: ``rss`` (resident, the OS's high-water mark) and, when a CUDA
    device was used, ``cuda`` (``torch.cuda.max_memory_allocated``). Recorded beside a run so that cost compares
    with quality; it covers the whole process (model loading included), rank 0's under torchrun."""
    out: dict[str, float] = {}
    try:
        import resource
    except ImportError:  # not on Windows
        resource = None
    if resource is not None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["rss"] = peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
    torch = sys.modules.get("torch")  # never imported just to ask
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.max_memory_allocated() / 2**20
    return out


@dataclass(frozen=True)
class WindowCounts:
    """How a window reranker's windows came back, over some queries: ``unchanged`` of ``windows`` in their input
    order, ``unparsed`` of them because the answer could not be read (None when the family parses no text)."""

    windows: int
    unchanged: int
    unparsed: int | None = None

    @property
    def unchanged_share(self) -> float:
        return self.unchanged / self.windows if self.windows else 0.0

    def note(self) -> str:
        """``windows unchanged: 9 of 9 (100%)``, with ``, 2 of them unparsed`` when answers were not read."""
        text = f"windows unchanged: {self.unchanged} of {self.windows} ({100 * self.unchanged_share:.0f}%)"
        if self.unparsed:
            text += f", {self.unparsed} of them unparsed"
        return text


def window_counts(per_query: Mapping[str, Mapping[str, Any]]) -> WindowCounts | None:
    """The windows returned unchanged (``windows_unchanged``, :meth:`perank.ranking.sliding_window.QueryState.place`)
    and unparsed (``parse_fallbacks``) over the queries that count both them and their ``windows``; None when no
    query does (a family without windows, or a run recorded before the count existed)."""
    counted = [s for s in per_query.values() if _is_number(s.get("windows")) and _is_number(s.get("windows_unchanged"))]
    if not counted:
        return None
    fallbacks = [s["parse_fallbacks"] for s in counted if _is_number(s.get("parse_fallbacks"))]
    return WindowCounts(
        windows=int(sum(s["windows"] for s in counted)),
        unchanged=int(sum(s["windows_unchanged"] for s in counted)),
        unparsed=int(sum(fallbacks)) if len(fallbacks) == len(counted) else None,
    )


def cut_queries_note(accounting: dict[str, Any], budget: TokenBudget | None) -> str | None:
    """The one note a run gets about its queries cut to the reranker's budget (None when none was)."""
    cut = int(accounting.get("totals", {}).get("truncated_queries", 0))
    if not cut or budget is None:
        return None
    what = "query" if cut == 1 else "queries"
    return f"{cut} {what} cut to {budget.max_tokens} tokens (the reranker's query budget; see --max-query-length)"
