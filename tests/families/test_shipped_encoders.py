"""The small encoder rerankers shipped under checkpoints/ (ColBERT, the residual ListConRanker) are their families'
defaults and rank real DL19 queries.

The small cross-encoder is trained by its recipe but not shipped (it ranks below BM25).

The expected per-query nDCG@10 values are those of the full DL19 runs recorded in checkpoints/README.md (a
change to the model, the loading code or the scoring moves them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.paths import REPO
from perank import Reranker
from perank.io import read_qrels, read_retrieval_results
from perank.metrics import evaluate_run

MS = REPO / "data" / "msmarco-passage"
QUERIES = ["264014", "104861"]

#: family -> (shipped folder, expected nDCG@10 of QUERIES, or None when only loading and ranking are checked)
SHIPPED = {
    "colbert": ("colbert-minilm", {"264014": 0.8078, "104861": 0.9306}),
    "listconranker": ("listconranker-minilm", {"264014": 0.79, "104861": 1.0}),
}


@pytest.fixture(scope="module")
def requests():
    wanted = [r for r in read_retrieval_results(MS / "retrieve_results_dl19.json") if r.query.qid in QUERIES]
    assert [r.query.qid for r in wanted] == QUERIES
    return wanted


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(SHIPPED))
def test_shipped_model_is_the_default_and_ranks_dl19(family: str, requests) -> None:
    folder, expected = SHIPPED[family]
    assert (REPO / "checkpoints" / folder).is_dir(), f"checkpoints/{folder} is missing"
    ranker = Reranker(family)
    assert Path(str(ranker.describe()["model_path"])).name == folder
    results = ranker.rerank(requests)
    for request, result in zip(requests, results):
        assert sorted(c.docid for c in result.candidates) == sorted(c.docid for c in request.candidates)
    if expected is not None:
        run = {r.query.qid: {c.docid: c.score for c in r.candidates} for r in results}
        qrels = read_qrels(MS / "qrels.dl19-passage.txt")
        for qid in QUERIES:
            got = evaluate_run({qid: run[qid]}, qrels)["ndcg_cut_10"]
            assert got == pytest.approx(expected[qid], abs=2e-3), qid
