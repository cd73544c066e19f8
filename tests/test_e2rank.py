"""The ``e2rank`` family: parity with E2Rank's own evaluation code, the plain mode equal to ``dense``, prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perank.families.e2rank.prompts import TASKS, cut_words, listwise_text
from perank.ranking.registry import build_reranker
from perank.types import InputError

PEERS = Path(__file__).parent / "fixtures" / "peers"
TINY = PEERS / "e2rank-qwen3-tiny"
GOLDEN = json.loads((PEERS / "golden_e2rank.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def rerankers() -> dict[tuple[str, int], object]:
    out = {}
    for case in GOLDEN["cases"]:
        mode = "plain" if case["method"] == "embedding" else "listwise"
        out[(mode, case["k"])] = build_reranker("e2rank", model_path=str(TINY), k=case["k"], mode=mode)
    return out


@pytest.mark.parametrize("index", range(len(GOLDEN["cases"])))
def test_parity_with_e2rank_eval_code(rerankers: dict, index: int) -> None:
    """Same texts, same token ids, scores within 1e-5 and the same ranking as E2Rank's ``EvalModel``."""
    case = GOLDEN["cases"][index]
    mode = "plain" if case["method"] == "embedding" else "listwise"
    reranker = rerankers[(mode, case["k"])]
    tokenizer = reranker.embedder.tokenizer
    query_text = reranker.pseudo_query(case["query"], case["docs"])
    assert query_text == case["query_text"]
    assert tokenizer(query_text)["input_ids"] == case["query_ids"]
    documents = reranker._documents(case["docs"])
    assert documents == case["doc_texts"]
    assert [tokenizer(d)["input_ids"] for d in documents] == case["doc_ids"]
    result = reranker.rank(case["query"], case["docs"])
    scores = {int(c.docid): c.score for c in result.candidates}
    assert max(abs(scores[i] - s) for i, s in enumerate(case["scores"])) < 1e-5
    assert [int(c.docid) for c in result.candidates] == case["ranking"]


def test_plain_mode_is_dense_over_an_encoder() -> None:
    query = "what is the capital of france"
    docs = ["Paris is the capital of France.", "Berlin is in Germany.", "The Eiffel tower.", "Bananas are yellow."]
    dense = build_reranker("dense")
    plain = build_reranker("e2rank", mode="plain")
    pairs = [(query, d) for d in docs]
    assert plain.compute_score(pairs) == dense.compute_score(pairs)
    a, b = dense.rank(query, docs), plain.rank(query, docs)
    assert [(c.docid, c.score) for c in a.candidates] == [(c.docid, c.score) for c in b.candidates]
    listwise = build_reranker("e2rank", k=2)
    assert listwise.compute_score(pairs) != dense.compute_score(pairs)  # the list does change the query vector


def test_prompt_numbers_candidates_from_one_and_cuts_words() -> None:
    text = listwise_text("q?", [cut_words("a  b\tc d", 3), "e"], TASKS["dl19"].listwise)
    assert text == (
        "Given a web search query and some relevant documents, rerank the documents that answer the query:\n"
        "Documents:\n[1] a b c\n[2] e\nSearch Query: q?"
    )
    reranker = build_reranker("e2rank", k=1, prompt="query-first")
    assert reranker.pseudo_query("q?", ["x y", "z"]) == "Search Query: q?\nDocuments:\n[1] x y"


def test_compute_score_groups_pairs_by_query_text() -> None:
    """``compute_score`` has no lists: pairs with the same query form one, in the order given."""
    reranker = build_reranker("e2rank", model_path=str(TINY), k=2)
    case = GOLDEN["cases"][0]
    docs = case["docs"]
    pairs = [(case["query"], d) for d in docs] + [("another query", docs[0])]
    scores = reranker.compute_score(pairs)
    expected = build_reranker("e2rank", model_path=str(TINY), k=2).rank(case["query"], docs)
    by_id = {int(c.docid): c.score for c in expected.candidates}
    assert scores[: len(docs)] == pytest.approx([by_id[i] for i in range(len(docs))], abs=1e-6)
    assert len(scores) == len(pairs)


def test_truncated_prompt_is_counted() -> None:
    reranker = build_reranker("e2rank", max_length=32)
    result = reranker.rank("a query", ["a long passage " * 20, "another passage"])
    assert result.stats["truncated_prompts"] == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "pointwise"}, "option mode='pointwise'"),
        ({"prompt": "rankgpt"}, "option prompt='rankgpt'"),
        ({"task": "msmarco-v9"}, "option task='msmarco-v9': unknown"),
        ({"k": 0}, "option k=0"),
    ],
)
def test_bad_options_are_named(options: dict, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        build_reranker("e2rank", **options)
