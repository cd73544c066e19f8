"""The small LLM rerankers shipped under checkpoints/ (LoRA adapters over the packaged SmolLM2) load by folder
and rank real DL19 queries as recorded.

Expected values: nDCG@10 of each query's BM25 top-20 reranked by the shipped adapter, recorded when the
adapters were trained (checkpoints/README.md); a change to the adapter, the loading code, the prompt or the
scoring moves them.
"""

from __future__ import annotations

import pytest

from helpers.paths import REPO
from perank import Reranker
from perank.io import read_qrels, read_retrieval_results
from perank.metrics import evaluate_run
from perank.types import Request

MS = REPO / "data" / "msmarco-passage"

#: family -> (shipped folder, {qid: nDCG@10 of its BM25 top-20 reranked})
SHIPPED = {
    "llm-yes-no": ("llm-yes-no-smollm2", {"104861": 0.8701}),
    "dear": ("listwise-sft-smollm2", {"264014": 0.5257, "104861": 0.8238}),
}


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(SHIPPED))
def test_shipped_adapter_loads_over_smollm2_and_ranks_dl19(family: str) -> None:
    folder, expected = SHIPPED[family]
    path = REPO / "checkpoints" / folder
    assert (path / "adapter_config.json").is_file(), f"checkpoints/{folder} is missing"
    requests = [
        Request(query=r.query, candidates=r.candidates[:20])
        for r in read_retrieval_results(MS / "retrieve_results_dl19.json")
        if r.query.qid in expected
    ]
    ranker = Reranker(family, model_path=str(path), device="cpu")
    results = ranker.rerank(requests)
    qrels = read_qrels(MS / "qrels.dl19-passage.txt")
    for request, result in zip(requests, results):
        assert sorted(c.docid for c in result.candidates) == sorted(c.docid for c in request.candidates)
        run = {result.query.qid: {c.docid: c.score for c in result.candidates}}
        got = evaluate_run(run, qrels)["ndcg_cut_10"]
        assert got == pytest.approx(expected[result.query.qid], abs=2e-3), result.query.qid
    if family == "dear":
        info = ranker.describe()  # the variant and the passage cut it was trained with, from dear_prompt.json
        assert info["prompt_mode"] == "repo" and info["max_passage_tokens"] == 48
        assert all(r.stats["parse_fallbacks"] == 0 for r in results)
