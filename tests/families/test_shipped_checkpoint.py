"""The shipped small PE-Rank (checkpoints/pe-rank-smollm2-minilm, with the relevance feature) loads as the
default and ranks real queries."""

from __future__ import annotations

import pytest

from helpers.paths import REPO
from perank.families.pe_rank.reranker import DEFAULT_CHECKPOINT
from perank.io import read_retrieval_results
from perank.ranking.registry import build_reranker
from perank.types import Request

DATA = REPO / "data" / "msmarco-passage" / "retrieve_results_dl19.json"


@pytest.mark.slow
def test_default_checkpoint_ranks_dl19_queries() -> None:
    assert (DEFAULT_CHECKPOINT / "perank_config.json").exists(), "the shipped checkpoint is missing"
    requests = [Request(r.query, r.candidates[:20]) for r in read_retrieval_results(DATA)[:2]]
    ranker = build_reranker("pe-rank", device="cpu", batch_size=2)  # no model_path: the shipped default
    assert ranker.describe()["query_embedding"] is True
    assert ranker.describe()["relevance_feature"] == "cosine"  # the shipped model carries the query cosine
    for request, result in zip(requests, ranker.rerank(requests)):
        assert sorted(c.docid for c in result.candidates) == sorted(c.docid for c in request.candidates)
        scores = [c.score for c in result.candidates]
        assert all(a > b for a, b in zip(scores, scores[1:]))
        assert result.stats["windows"] == 1 and result.stats["tokens_generated"] == 20
