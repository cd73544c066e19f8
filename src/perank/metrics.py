"""Scoring TREC runs with pytrec_eval, the way PE-Rank reports its numbers.

The measures are PE-Rank's: ``ndcg_cut``, ``map_cut`` and ``recall`` at 1, 5, 10, 20 and 100, with
nDCG@10 as the headline.

Averaging (why it is not ``trec_eval -c``): the original ``src/scripts/trec_eval.py`` calls pytrec_eval
directly and divides the per-query sums by the number of queries pytrec_eval returned, i.e. the queries
present in *both* the run and the qrels. Queries in the run but not judged are ignored (as trec_eval does),
and a judged query missing from the run is ignored too (``trec_eval`` without ``-c``). For a complete run
the two conventions agree; they differ only when the run drops judged queries, where ``-c`` counts those as
zero. The default reproduces the shipped BM25 numbers exactly (DL19 nDCG@10 0.5058, DL20 0.4796);
``complete=True`` gives the ``-c`` behaviour for anyone comparing with Anserini's tables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from perank.io import atomic_write, read_qrels, read_trec_run
from perank.types import InputError

PathLike = str | os.PathLike[str]

#: pytrec_eval measure families, in the order they are printed
MEASURES: tuple[str, ...] = ("ndcg_cut", "map_cut", "recall")
#: cutoffs for every family
CUTOFFS: tuple[int, ...] = (1, 5, 10, 20, 100)
#: the number every table leads with
HEADLINE = "ndcg_cut_10"


def measure_names(measures: Iterable[str] = MEASURES, cutoffs: Iterable[int] = CUTOFFS) -> list[str]:
    """pytrec_eval's result keys (``ndcg_cut_10``, ...) in the stable print order: family, then cutoff."""
    cutoffs = tuple(cutoffs)
    return [f"{m}_{k}" for m in measures for k in cutoffs]


def evaluate_run(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    complete: bool = False,
    measures: Iterable[str] = MEASURES,
    cutoffs: Iterable[int] = CUTOFFS,
) -> dict[str, float]:
    """Mean of each measure over the judged queries the run answers (see the module doc for why).

    ``complete=True`` divides by all judged queries instead (``trec_eval -c``): a judged query missing
    from the run then counts as zero. Raises :class:`InputError` when the run and the qrels share no query,
    which almost always means the wrong qrels file.
    """
    measures, cutoffs = tuple(measures), tuple(cutoffs)
    spec = {f"{m}.{','.join(str(k) for k in cutoffs)}" for m in measures}
    per_query = per_query_scores(run, qrels, spec)
    if not per_query:
        raise InputError(
            f"the run ({len(run)} queries) and the qrels ({len(qrels)} queries) share no query id; wrong qrels?"
        )
    denominator = len(qrels) if complete else len(per_query)
    names = measure_names(measures, cutoffs)
    return {name: sum(scores[name] for scores in per_query.values()) / denominator for name in names}


def per_query_scores(
    run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, Mapping[str, int]], spec: Iterable[str]
) -> dict[str, dict[str, float]]:
    """pytrec_eval's value of each measure for each judged query the run answers (``{qid: {"ndcg_cut_10": ...}}``).

    ``spec`` holds pytrec_eval measure specs (``"ndcg_cut.10"``, ``"recip_rank"``). The one place the toolkit
    calls pytrec_eval, so the averages here and the per-query comparisons of :mod:`perank.compare` agree.
    """
    import pytrec_eval

    # pytrec_eval wants plain dicts of str -> float/int
    run_d = {str(q): {str(d): float(s) for d, s in docs.items()} for q, docs in run.items()}
    qrels_d = {str(q): {str(d): int(g) for d, g in docs.items()} for q, docs in qrels.items()}
    return pytrec_eval.RelevanceEvaluator(qrels_d, set(spec)).evaluate(run_d)


def count_scored_queries(run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, Mapping[str, int]]) -> int:
    """How many queries the averages of :func:`evaluate_run` (default averaging) are taken over."""
    return len(set(map(str, run)) & set(map(str, qrels)))


def format_metrics(metrics: Mapping[str, float]) -> str:
    """One ``name<TAB>value`` line per measure, 4 decimals, known measures first in their fixed order."""
    known = [n for n in measure_names() if n in metrics]
    rest = sorted(n for n in metrics if n not in set(known))
    return "\n".join(f"{name}\t{float(metrics[name]):.4f}" for name in known + rest)


def metrics_path(run_path: PathLike) -> Path:
    """Where the metrics JSON of a run goes: beside it, the run's full name plus ``.metrics.json``."""
    run_path = Path(run_path)
    return run_path.with_name(run_path.name + ".metrics.json")


def read_metrics_json(run_path: PathLike) -> dict[str, Any]:
    """The metrics JSON beside a run (``{}`` when there is none or it is not a JSON object): what a run records
    about itself (dataset, settings, accounting) for the commands that read runs back (``perank compare``,
    ``perank fuse``)."""
    try:
        data = json.loads(metrics_path(run_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def update_metrics_json(path: PathLike, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``fields`` into the JSON object at ``path`` (created if absent) and write it atomically.

    Merging rather than overwriting matters because the pipeline stores the reranker's accounting
    (latency, tokens) in the same file: re-scoring a run with ``trec_eval.py`` must not erase it.
    """
    path = Path(path)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                data = loaded
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = {}  # a broken metrics file is just replaced
    data.update(fields)
    with atomic_write(path) as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    return data


def score_run_file(
    run_path: PathLike,
    qrels_path: PathLike,
    out_json: PathLike | None = None,
    *,
    complete: bool = False,
) -> dict[str, float]:
    """Score a TREC run file against a qrels file and record the result beside the run.

    The JSON (``<run>.metrics.json`` unless ``out_json`` is given) gets ``metrics`` (full precision),
    ``num_queries`` (queries averaged over), ``averaging``, ``run`` and ``qrels``; other keys already in
    the file are kept.
    """
    run = read_trec_run(run_path)
    qrels = read_qrels(qrels_path)
    metrics = evaluate_run(run, qrels, complete=complete)
    update_metrics_json(
        out_json if out_json is not None else metrics_path(run_path),
        {
            "run": str(run_path),
            "qrels": str(qrels_path),
            "num_queries": len(qrels) if complete else count_scored_queries(run, qrels),
            "averaging": "all judged queries (trec_eval -c)" if complete else "judged queries in the run",
            "metrics": metrics,
        },
    )
    return metrics
