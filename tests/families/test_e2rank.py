"""The ``e2rank`` family: parity with E2Rank's own evaluation code, the plain mode equal to ``dense``, prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.paths import PEERS
from perank import Reranker
from perank.families.e2rank.prompts import TASKS, cut_words, listwise_text
from perank.ranking.registry import build_reranker
from perank.types import InputError

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
    listwise = build_reranker("e2rank", k=2).rank(query, docs)
    assert [c.score for c in listwise.candidates] != [c.score for c in a.candidates]  # the list changes the query


def test_prompt_numbers_candidates_from_one_and_cuts_words() -> None:
    text = listwise_text("q?", [cut_words("a  b\tc d", 3), "e"], TASKS["dl19"].listwise)
    assert text == (
        "Given a web search query and some relevant documents, rerank the documents that answer the query:\n"
        "Documents:\n[1] a b c\n[2] e\nSearch Query: q?"
    )
    reranker = build_reranker("e2rank", k=1, prompt="query-first")
    assert reranker.pseudo_query("q?", ["x y", "z"]) == "Search Query: q?\nDocuments:\n[1] x y"


def test_listwise_mode_refuses_compute_score_and_plain_mode_takes_it() -> None:
    """A listwise score depends on the whole candidate list, so there is no per-pair score to give."""
    pairs = [("q", "a passage"), ("q", "another")]
    with pytest.raises(InputError, match="scores a passage against its whole candidate list"):
        build_reranker("e2rank", k=2).compute_score(pairs)
    with pytest.raises(InputError, match="has no per-pair score"):
        Reranker("e2rank", k=2).compute_score(pairs)
    assert len(Reranker("e2rank", mode="plain").compute_score(pairs)) == 2


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


def test_e2rank_reads_the_passage_vectors_dense_cached(tmp_path: Path) -> None:
    """Reranking after ``dense`` with the same model and cache costs only the query encodings: every passage
    vector is a cache hit, and the scores are those computed without a cache."""
    cache = str(tmp_path / "emb.sqlite")
    query = "what is the capital of france"
    docs = ["Paris is the capital of France.", "Berlin is in Germany.", "The Eiffel tower.", "Bananas are yellow."]
    dense = build_reranker("dense", embedding_cache=cache)
    assert [c.score for c in dense.rank(query, docs).candidates] == [
        c.score for c in build_reranker("dense").rank(query, docs).candidates
    ]
    e2rank = build_reranker("e2rank", k=2, embedding_cache=cache)
    cached = e2rank.rank(query, docs)
    assert e2rank.embedder.cache.hits == len(docs) and e2rank.embedder.cache.misses == 0
    fresh = build_reranker("e2rank", k=2).rank(query, docs)
    assert [(c.docid, c.score) for c in cached.candidates] == [(c.docid, c.score) for c in fresh.candidates]
