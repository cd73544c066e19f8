"""Order sensitivity: how much a system's output changes when its input order is permuted.

A run made with ``evaluate.py --shuffle-input reverse|SEED`` is named like its unshuffled twin plus a marker
(``pe-rank+shuffle-reverse``, :mod:`perank.shuffle`); when both are compared, the report shows the change of the
headline measure (shuffled - unshuffled, over the compared queries) and the mean per-query Kendall τ between the
two output rankings (1: the same order, whatever the input; -1: reversed). ``--order-pair A:B`` pairs any two
systems by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from perank.compare.stats import kendall_tau
from perank.shuffle import unshuffled_name
from perank.types import InputError


@dataclass(frozen=True)
class OrderSensitivity:
    """``shuffled`` against ``system``: ``delta`` of the headline measure (shuffled - system), ``kendall_tau``
    averaged over the ``queries`` both runs rank (``None`` when no query shares two passages)."""

    system: str
    shuffled: str
    shuffle: str | None
    delta: float
    kendall_tau: float | None
    queries: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def order_pairs(labels: Mapping[str, str], explicit: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(system, shuffled) pairs of names: those given as ``A:B``, then every system whose run label is another's
    plus a shuffle marker. ``labels`` maps each system's name to its run's label, so that a renamed system
    (``--name identity=BM25``) still pairs with its shuffled twin."""
    known = set(labels)
    pairs: list[tuple[str, str]] = []
    for item in explicit:
        first, sep, second = item.partition(":")
        if not sep or not first or not second:
            raise InputError(f"--order-pair {item!r}: expected UNSHUFFLED:SHUFFLED (two system names)")
        for name in (first, second):
            if name not in known:
                raise InputError(f"--order-pair {item!r}: no system is named {name!r}")
        pairs.append((first, second))
    by_label = {label: name for name, label in labels.items()}
    for name, label in labels.items():
        base, how = unshuffled_name(label)
        if how is not None and base in by_label and (by_label[base], name) not in pairs:
            pairs.append((by_label[base], name))
    return pairs


def order_sensitivity(
    pairs: Sequence[tuple[str, str]],
    runs: Mapping[str, Mapping[str, Mapping[str, float]]],
    headline: Mapping[str, Mapping[str, float]],
    qids: Sequence[str],
    shuffles: Mapping[str, str] | None = None,
) -> list[OrderSensitivity]:
    """One row per pair: ``runs`` are the systems' runs, ``headline`` their per-query headline values, ``qids``
    the compared queries (τ is taken over every query both runs rank, judged or not), ``shuffles`` the input order
    of each shuffled system (``reverse`` or a seed; a pair given by hand has none)."""
    shuffles = shuffles or {}
    rows = []
    for system, shuffled in pairs:
        delta = float(np.mean([headline[shuffled][q] - headline[system][q] for q in qids]))
        taus = [
            tau
            for q in sorted(set(runs[system]) & set(runs[shuffled]))
            if (tau := kendall_tau(runs[system][q], runs[shuffled][q])) is not None
        ]
        how = shuffles.get(shuffled)
        mean_tau = float(np.mean(taus)) if taus else None
        rows.append(OrderSensitivity(system, shuffled, how, delta, mean_tau, len(taus)))
    return rows
