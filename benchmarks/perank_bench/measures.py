"""Summary statistics of a timed run: percentiles, peak memory, means of the rerankers' own counters.

Benchmark-specific on purpose: the package has no use for them, and the record's numbers must not move when
the package changes.
"""

from __future__ import annotations

import math
import statistics
import sys
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of a non-empty list."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB, macOS bytes)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def mean_stat(results: list[Any], key: str) -> float | None:
    """Mean of a numeric ``Result.stats`` counter over the results that report it; None when none does."""
    vals = [r.stats[key] for r in results if isinstance(r.stats.get(key), int | float)]
    return statistics.fmean(vals) if vals else None


def stats_means(results: list[Any]) -> dict[str, float | None]:
    """Mean of every numeric ``Result.stats`` counter any result reports, by name."""
    numeric = sorted({k for r in results for k, v in r.stats.items() if isinstance(v, int | float)})
    return {k: mean_stat(results, k) for k in numeric}
