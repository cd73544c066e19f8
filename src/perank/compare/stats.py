"""The statistics of a comparison, all on scipy: paired tests, Holm's correction, the confidence interval of the
mean difference, per-query wins, and Kendall's τ between two rankings of the same passages.

Why these (see ``docs/compare.md``):

- the two-sided **paired t-test** (``scipy.stats.ttest_rel``) is what IR papers report by default; on TREC runs
  it agrees closely with the randomization test (Smucker, Allan and Carterette, CIKM 2007, "A comparison of
  statistical significance tests for information retrieval evaluation");
- **Fisher's randomization test** (``scipy.stats.permutation_test`` with paired samples: each query's two values
  swapped or not, i.e. sign flips of its Δ; exact when the ``2**n`` flips fit in the resample budget) makes no
  normality assumption, and is the test that paper recommends;
- **Holm-Bonferroni** controls the family-wise error over the systems compared with one baseline and is
  uniformly more powerful than Bonferroni. scipy has no Holm (``false_discovery_control`` is Benjamini-Hochberg,
  which controls another error rate), so it is the few lines of :func:`holm`;
- the **95% interval of the mean Δ** is the t interval (``TtestResult.confidence_interval``), the same model as
  the t-test, uncorrected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: |Δ| below this is a tie (per-query values are sums of a few floats; equal rankings give equal values)
TIE = 1e-9
#: the tests ``--test`` accepts
TESTS = {"t": "two-sided paired t-test", "randomization": "two-sided Fisher randomization (sign-flip) test"}


@dataclass(frozen=True)
class Paired:
    """One system against the baseline on one measure, over the same queries (Δ = system - baseline)."""

    mean_delta: float
    ci_low: float
    ci_high: float
    p_value: float
    wins: int
    ties: int
    losses: int


def paired_test(
    system: Sequence[float],
    baseline: Sequence[float],
    test: str = "t",
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> Paired:
    """The test's two-sided p-value, the t interval of the mean Δ and wins/ties/losses, from the two systems'
    per-query values (the same queries, in the same order).

    All Δs ties (identical per-query values): p = 1 and the interval is [0, 0]. Δs all equal but not zero leave
    the t statistic undefined (no variance): p = 0 for the t-test, its limit; the randomization test is
    computed as usual.
    """
    from scipy import stats

    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; known: {', '.join(TESTS)}")
    x, y = np.asarray(system, dtype=float), np.asarray(baseline, dtype=float)
    if x.shape != y.shape or len(x) < 2:
        raise ValueError("a paired test needs the same queries, at least two, for both systems")
    d = x - y
    wins, losses = int(np.sum(d >= TIE)), int(np.sum(d <= -TIE))
    ties = len(d) - wins - losses
    mean = float(np.mean(d))
    if ties == len(d):
        return Paired(mean, 0.0, 0.0, 1.0, wins, ties, losses)
    constant = bool(np.ptp(d) < TIE)
    if constant:
        low = high = mean
    else:
        result = stats.ttest_rel(x, y)
        interval = result.confidence_interval(confidence)
        low, high = float(interval.low), float(interval.high)
    if test == "t":
        p = 0.0 if constant else float(result.pvalue)
    else:
        p = float(
            stats.permutation_test(
                (x, y),
                lambda a, b, axis: np.mean(a - b, axis=axis),
                permutation_type="samples",
                n_resamples=resamples,
                alternative="two-sided",
                rng=np.random.default_rng(seed),
            ).pvalue
        )
    return Paired(mean, low, high, min(1.0, p), wins, ties, losses)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order: the i-th smallest of m is multiplied by m - i + 1,
    made monotone (never below the previous adjusted one) and capped at 1. Reject where adjusted p < alpha."""
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for i, index in enumerate(sorted(range(m), key=lambda j: p_values[j])):
        running = max(running, min(1.0, (m - i) * p_values[index]))
        adjusted[index] = running
    return adjusted


def kendall_tau(first: Mapping[str, float], second: Mapping[str, float]) -> float | None:
    """Kendall's τ-b (``scipy.stats.kendalltau``) between two rankings of one query, over the passages both hold,
    each ranked by its score; ``None`` when fewer than two passages are shared."""
    from scipy import stats

    shared = sorted(set(first) & set(second))
    if len(shared) < 2:
        return None
    tau = stats.kendalltau([first[d] for d in shared], [second[d] for d in shared]).statistic
    return None if tau is None or math.isnan(tau) else float(tau)
