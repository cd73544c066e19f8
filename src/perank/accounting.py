"""Per-query accounting of a run: the numeric stats each reranker reports, with totals, means and medians.

Written beside every run (the metrics JSON's ``accounting``), so cost compares across families: LLM calls,
prompt and generated tokens, latency, truncations and parser repairs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
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
        for key in CORE_STATS:
            stats.setdefault(key, 0)
        per_query[result.query.qid] = {k: (int(v) if isinstance(v, bool) else v) for k, v in stats.items()}
    keys = list(CORE_STATS) + sorted({k for s in per_query.values() for k in s} - set(CORE_STATS))
    totals, means, medians = {}, {}, {}
    for key in keys:
        values = [s[key] for s in per_query.values() if key in s]
        totals[key] = sum(values)
        means[key] = statistics.fmean(values) if values else 0.0
        medians[key] = statistics.median(values) if values else 0.0
    return {"num_queries": len(per_query), "totals": totals, "means": means, "medians": medians, "per_query": per_query}


def cut_queries_note(accounting: dict[str, Any], budget: TokenBudget | None) -> str | None:
    """The one note a run gets about its queries cut to the reranker's budget (None when none was)."""
    cut = int(accounting.get("totals", {}).get("truncated_queries", 0))
    if not cut or budget is None:
        return None
    what = "query" if cut == 1 else "queries"
    return f"{cut} {what} cut to {budget.max_tokens} tokens (the reranker's query budget; see --max-query-length)"
