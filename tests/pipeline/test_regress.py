"""The regression scores of ``results/expected/`` hold: each file's command, rerun on two of its stored
queries, gives the stored per-query nDCG@10 at 4 decimals (the full check is ``make regress``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from helpers.paths import REPO
from perank.ranking.base import BaseReranker
from perank.tools import regress

EXPECTED = sorted(regress.EXPECTED_DIR.glob("*.yaml"))


def test_every_expected_file_is_a_known_spec() -> None:
    known = {spec.path for spec in regress.all_specs()}
    assert EXPECTED, "no expected files under results/expected"
    for path in EXPECTED:
        assert path in known, f"{path.name} is not a model/dataset of perank.tools.regress"
        data = regress.load_expected(path)
        spec = next(s for s in regress.all_specs() if s.path == path)
        assert data["command"] == spec.command and data["name"] == spec.name
        assert len(data[f"per_query_{regress.PER_QUERY_MEASURE}"]) >= 2


@cache
def reranker_for(command: str) -> BaseReranker:
    """One reranker per command, built as evaluate.py builds it (dl19 and dl20 share it)."""
    from perank.cli.evaluate import build_from_args

    return build_from_args(regress.parse_command(command))


@pytest.mark.slow
@pytest.mark.parametrize("path", EXPECTED, ids=[p.stem for p in EXPECTED])
def test_two_stored_queries_rerank_to_their_expected_ndcg(path: Path, tmp_path: Path) -> None:
    from perank.datasets import find_qrels
    from perank.io import write_trec_run
    from perank.pipeline import load_candidates

    expected = regress.load_expected(path)
    stored = {str(q): v for q, v in list(expected[f"per_query_{regress.PER_QUERY_MEASURE}"].items())[:2]}
    args = regress.parse_command(expected["command"])
    if args.model_path and not (REPO / args.model_path).exists():
        pytest.skip(f"the shipped checkpoint {args.model_path} is not in this checkout")
    (dataset,) = args.datasets
    requests = [r for r in load_candidates(dataset, topk=args.topk) if r.query.qid in stored]
    assert [r.query.qid for r in requests] == list(stored), "a stored query is not among the candidates"
    run_path = tmp_path / "run.txt"
    write_trec_run(run_path, reranker_for(expected["command"]).rerank(requests))
    got = regress.per_query(run_path, find_qrels(dataset, None))
    assert {q: round(got[q], regress.DECIMALS) for q in stored} == stored
