"""A comparison of systems against one baseline, as data: every table, file and plot of ``perank compare`` is
rendered from a :class:`Comparison` and nothing else.

Systems are compared on the same queries: the judged queries every run answers. A run that answers fewer is not
averaged over other queries than its peers (that would compare different things); the queries it lacks are
dropped for everyone, with a note saying how many and whose, or the comparison is refused with ``--strict``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from perank.compare.cost import Cost, cost_of
from perank.compare.measures import Measure, per_query_values
from perank.compare.order import OrderSensitivity, order_pairs, order_sensitivity
from perank.compare.stats import TESTS, Paired, holm, paired_test
from perank.compare.systems import System
from perank.shuffle import unshuffled_name
from perank.types import InputError


@dataclass(frozen=True)
class Row:
    """One system: ``means`` per measure key, and against the baseline (empty for the baseline itself) the
    ``paired`` comparison and the Holm-corrected p-value ``p_holm`` per measure key; its ``cost``."""

    name: str
    run: str
    means: dict[str, float]
    paired: dict[str, Paired]
    p_holm: dict[str, float]
    cost: Cost


@dataclass
class Comparison:
    """Everything a report shows. ``values[measure key][system][qid]`` holds the per-query values on the compared
    queries ``qids``; ``missing[system]`` the judged queries other runs answer and this one does not."""

    measures: list[Measure]
    baseline: str
    test: str
    alpha: float
    qids: list[str]
    rows: list[Row]
    values: dict[str, dict[str, dict[str, float]]]
    order: list[OrderSensitivity] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    topics: dict[str, str] = field(default_factory=dict)
    qrels: str = ""
    dataset: str | None = None

    @property
    def headline(self) -> Measure:
        """The first measure: the one the Δ, wins, plot and per-query view are about (nDCG@10 by default)."""
        return self.measures[0]

    def significant(self, row: Row, key: str) -> bool:
        """Whether ``row`` differs from the baseline on measure ``key`` at ``alpha`` after Holm's correction."""
        return key in row.p_holm and row.p_holm[key] < self.alpha


def _choose_baseline(systems: Sequence[System], baseline: str | None) -> str:
    names = [s.name for s in systems]
    if baseline is None:
        return names[0]
    if baseline not in names:
        from perank.ranking.options import suggest

        raise InputError(
            f"--baseline {baseline!r}: no such system{suggest(baseline, names)}; known: {', '.join(names)}"
        )
    return baseline


def _shared_queries(
    answered: Mapping[str, set[str]], strict: bool
) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """The compared queries, each system's missing ones, and the note about them."""
    union = set().union(*answered.values())
    common = set.intersection(*answered.values())
    if not common:
        raise InputError("the runs share no judged query; nothing to compare")
    missing = {name: sorted(union - qids) for name, qids in answered.items() if union - qids}
    notes = []
    if missing:
        whose = ", ".join(f"{name} lacks {len(qids)}" for name, qids in missing.items())
        if strict:
            raise InputError(
                f"the runs answer different judged queries ({whose}); drop --strict to compare the shared ones"
            )
        notes.append(
            f"compared on the {len(common)} judged queries every run answers; dropped {len(union - common)} ({whose})"
        )
    if len(common) < 2:
        raise InputError(f"the runs share {len(common)} judged query; a paired test needs at least two")
    return sorted(common), missing, notes


def build_comparison(
    systems: Sequence[System],
    qrels: Mapping[str, Mapping[str, int]],
    measures: Sequence[Measure],
    *,
    baseline: str | None = None,
    test: str = "t",
    alpha: float = 0.05,
    strict: bool = False,
    pairs: Sequence[str] = (),
    resamples: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Per-query values of every measure (pytrec_eval), means over the shared queries, each system's paired test
    against the baseline per measure with Holm's correction across the systems, cost and order sensitivity."""
    if test not in TESTS:
        raise InputError(f"--test {test!r}: expected one of {', '.join(TESTS)}")
    if not 0 < alpha < 1:
        raise InputError(f"--alpha {alpha}: expected a number between 0 and 1")
    base = _choose_baseline(systems, baseline)
    measures = list(measures)
    per_system = {s.name: per_query_values(s.run, qrels, measures) for s in systems}
    answered = {name: set(v[measures[0].key]) for name, v in per_system.items()}
    qids, missing, notes = _shared_queries(answered, strict)
    values = {m.key: {name: {q: v[m.key][q] for q in qids} for name, v in per_system.items()} for m in measures}

    paired: dict[str, dict[str, Paired]] = {s.name: {} for s in systems}
    p_holm: dict[str, dict[str, float]] = {s.name: {} for s in systems}
    others = [s.name for s in systems if s.name != base]
    for m in measures:
        reference = [values[m.key][base][q] for q in qids]
        for name in others:
            paired[name][m.key] = paired_test(
                [values[m.key][name][q] for q in qids],
                reference,
                test,
                confidence=1 - alpha,
                resamples=resamples,
                seed=seed,
            )
        for name, p in zip(others, holm([paired[name][m.key].p_value for name in others])):
            p_holm[name][m.key] = p

    rows = [
        Row(
            name=s.name,
            run=str(s.path),
            means={m.key: float(np.mean([values[m.key][s.name][q] for q in qids])) for m in measures},
            paired=paired[s.name],
            p_holm=p_holm[s.name],
            cost=cost_of(s.accounting, set(qids)),
        )
        for s in sorted(systems, key=lambda s: s.name != base)  # the baseline first, the others as given
    ]
    runs = {s.name: s.run for s in systems}
    labels = {s.name: s.label or s.name for s in systems}
    shuffles = {name: how for name, label in labels.items() if (how := unshuffled_name(label)[1]) is not None}
    order = order_sensitivity(order_pairs(labels, pairs), runs, values[measures[0].key], qids, shuffles)
    return Comparison(
        measures=measures,
        baseline=base,
        test=test,
        alpha=alpha,
        qids=qids,
        rows=rows,
        values=values,
        order=order,
        missing=missing,
        notes=notes,
    )
