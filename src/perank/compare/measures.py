"""The measures a comparison reports (``--measures ndcg@10 map@100 mrr@10 ...``) and their per-query values.

pytrec_eval computes every value (:func:`perank.metrics.per_query_scores`, the same call the metrics JSON's averages
come from), so a table's nDCG@10 is the number ``evaluate.py`` printed for the run when the queries are the same.
MRR@k has no pytrec_eval cutoff: it is pytrec_eval's ``recip_rank`` on the run cut to its top k, which is how the
MS MARCO MRR@10 is defined.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from perank.metrics import per_query_scores
from perank.types import InputError

#: flag name -> (display name, pytrec_eval measure family; None: recip_rank on the cut run)
FAMILIES: dict[str, tuple[str, str | None]] = {
    "ndcg": ("nDCG", "ndcg_cut"),
    "map": ("MAP", "map_cut"),
    "recall": ("R", "recall"),
    "p": ("P", "P"),
    "mrr": ("MRR", None),
}

#: the issue's table: nDCG@10 first (the headline, and what the significance columns and the plot use)
DEFAULT_MEASURES = ("ndcg@10", "ndcg@5", "map@100", "recall@100", "mrr@10")


@dataclass(frozen=True)
class Measure:
    """One measure at one cutoff: ``key`` as given on the command line (``ndcg@10``), ``label`` for tables
    (``nDCG@10``), the pytrec_eval ``spec`` and result ``field``, and ``depth`` when the run is cut first."""

    key: str
    label: str
    spec: str
    field: str
    depth: int | None = None


def parse_measure(text: str) -> Measure:
    """``ndcg@10``, ``map@100``, ``recall@100``, ``p@5``, ``mrr@10`` (case does not matter)."""
    match = re.fullmatch(r"([A-Za-z]+)@(\d+)", text.strip())
    family = match.group(1).lower() if match else ""
    if match is None or family not in FAMILIES or int(match.group(2)) < 1:
        raise InputError(f"--measures {text!r}: expected NAME@K with NAME one of {', '.join(FAMILIES)} and K >= 1")
    k = int(match.group(2))
    label, trec = FAMILIES[family]
    key = f"{family}@{k}"
    if trec is None:
        return Measure(key, f"{label}@{k}", "recip_rank", "recip_rank", depth=k)
    return Measure(key, f"{label}@{k}", f"{trec}.{k}", f"{trec}_{k}")


def parse_measures(texts: Sequence[str]) -> list[Measure]:
    """The measures in the order given, each once."""
    measures = [parse_measure(t) for t in texts]
    keys = [m.key for m in measures]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise InputError(f"--measures: {repeated[0]} given twice")
    if not measures:
        raise InputError("--measures: give at least one measure")
    return measures


def cut(run: Mapping[str, Mapping[str, float]], depth: int) -> dict[str, dict[str, float]]:
    """Each query's top ``depth`` passages, in trec_eval's order (score descending, ties by docid descending)."""
    out = {}
    for qid, scores in run.items():
        ordered = sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)
        out[qid] = dict(ordered[:depth])
    return out


def per_query_values(
    run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, Mapping[str, int]], measures: Sequence[Measure]
) -> dict[str, dict[str, float]]:
    """``{measure key: {qid: value}}`` for every judged query the run answers (one pytrec_eval call per depth)."""
    out: dict[str, dict[str, float]] = {m.key: {} for m in measures}
    by_depth: dict[int | None, list[Measure]] = {}
    for m in measures:
        by_depth.setdefault(m.depth, []).append(m)
    for depth, group in by_depth.items():
        scores = per_query_scores(run if depth is None else cut(run, depth), qrels, {m.spec for m in group})
        for qid, values in scores.items():
            for m in group:
                out[m.key][qid] = float(values[m.field])
    return out
