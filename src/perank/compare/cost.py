"""What a system costs per query, read from the accounting its run already recorded (the metrics JSON's
``accounting``, :mod:`perank.accounting`): median and p95 seconds, prompt and generated tokens, LLM calls, peak
memory, and for a sliding-window family the share of its windows returned in their input order. Every field is
``None`` (a ``-`` in the tables) where the run recorded nothing: a TREC file from elsewhere has a quality but no
known cost, and an unknown cost must not read as a free one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from perank.accounting import window_counts


@dataclass(frozen=True)
class Cost:
    """Per query over the compared queries: ``median_s``/``p95_s`` of ``latency_s``; means of ``tokens_processed``
    (``prompt_tokens``: the model's input, encoder tokens for encoders), ``tokens_generated`` and ``llm_calls``
    (a listwise family's ``windows``, one prompt each); ``windows_unchanged``: the share (0-1) of those windows
    the model gave back in their input order (:func:`perank.accounting.window_counts`); ``peak_rss_mb``/
    ``peak_cuda_mb`` of the process that wrote the run."""

    median_s: float | None = None
    p95_s: float | None = None
    prompt_tokens: float | None = None
    generated_tokens: float | None = None
    llm_calls: float | None = None
    windows_unchanged: float | None = None
    peak_rss_mb: float | None = None
    peak_cuda_mb: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def _values(per_query: Mapping[str, Mapping[str, Any]], key: str) -> list[float]:
    return [float(s[key]) for s in per_query.values() if isinstance(s.get(key), int | float)]


def cost_of(accounting: Mapping[str, Any] | None, qids: Collection[str]) -> Cost:
    """The cost over ``qids`` (the compared queries, so that runs over other query sets compare fairly), from the
    per-query accounting; the run's recorded medians and means when it has no per-query values for them."""
    if not isinstance(accounting, Mapping):
        return Cost()
    per_query_all = accounting.get("per_query")
    if not isinstance(per_query_all, Mapping):
        per_query_all = {}
    per_query = {q: s for q, s in per_query_all.items() if q in qids and isinstance(s, Mapping)}
    means = accounting.get("means") if isinstance(accounting.get("means"), Mapping) else {}
    medians = accounting.get("medians") if isinstance(accounting.get("medians"), Mapping) else {}
    peak = accounting.get("peak_memory_mb") if isinstance(accounting.get("peak_memory_mb"), Mapping) else {}

    def mean(key: str) -> float | None:
        values = _values(per_query, key)
        if values:
            return float(np.mean(values))
        return float(means[key]) if isinstance(means.get(key), int | float) else None

    latencies = _values(per_query, "latency_s")
    if latencies:
        median_s, p95_s = float(np.median(latencies)), float(np.percentile(latencies, 95))
    else:
        recorded = medians.get("latency_s")
        median_s, p95_s = (float(recorded) if isinstance(recorded, int | float) else None), None
    calls = mean("llm_calls")
    windows = window_counts(per_query)
    return Cost(
        median_s=median_s,
        p95_s=p95_s,
        prompt_tokens=mean("tokens_processed"),
        generated_tokens=mean("tokens_generated"),
        llm_calls=calls if calls is not None else mean("windows"),
        windows_unchanged=windows.unchanged_share if windows is not None and windows.windows else None,
        peak_rss_mb=float(peak["rss"]) if isinstance(peak.get("rss"), int | float) else None,
        peak_cuda_mb=float(peak["cuda"]) if isinstance(peak.get("cuda"), int | float) else None,
    )
