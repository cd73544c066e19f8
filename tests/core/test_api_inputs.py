"""The Python API checks its inputs, as the file readers do: a wrong type is an InputError naming its position.

``Reranker("dense").rank(None, ["a", "b"])`` used to rank (the query became the text "None"). Every family now
refuses a non-text query, a non-text document and a ``docs`` that is not a list, naming the argument and the
position; ``compute_score`` the same for pairs. A Hypothesis fuzz over every family's tiny configuration holds
each ``rank`` to: a valid permutation for valid input, an InputError for anything else, never another exception.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.catalogue import TINY
from perank import Reranker
from perank.ranking.budgets import MAX_CHARS_PER_TOKEN
from perank.ranking.family import TinyFixtures
from perank.types import Candidate, InputError, Query, Request

FUZZ_EXAMPLES = 20


@pytest.fixture(scope="module")
def fixtures(tiny_fixtures: TinyFixtures) -> TinyFixtures:
    return tiny_fixtures


@pytest.fixture(scope="module")
def rankers(fixtures) -> dict[str, Reranker]:
    """One tiny reranker per family, built on first use."""

    class Lazy(dict):
        def __missing__(self, name: str) -> Reranker:
            self[name] = Reranker(name, **TINY[name](fixtures))
            return self[name]

    return Lazy()


#: (call, the message its InputError must contain); ``r`` is a pointwise (dense) tiny reranker
CASES = [
    (lambda r: r.rank(None, ["a", "b"]), "query: expected a text or a Query, got NoneType"),
    (lambda r: r.rank(42, ["a", "b"]), "query: expected a text or a Query, got int"),
    (lambda r: r.rank(b"fleas", ["a"]), "query: expected a text or a Query, got bytes"),
    (lambda r: r.rank("q", ["a", None, "c"]), "docs[1]: expected a text or a Candidate, got NoneType"),
    (lambda r: r.rank("q", ["a", 3.5]), "docs[1]: expected a text or a Candidate, got float"),
    (lambda r: r.rank("q", "a single string"), "docs: expected a list of texts or Candidates, not one string"),
    (lambda r: r.rank("q", None), "docs: expected a list of texts or Candidates, not NoneType"),
    (lambda r: r.rank("q", {"a": 1}), "docs: expected a list of texts or Candidates, not dict"),
    (lambda r: r.rank("q", (d for d in ["a"])), "docs: expected a list of texts or Candidates, not generator"),
    (lambda r: r.rank("fl\ud800ea", ["a"]), "query: not valid Unicode text (lone surrogate U+D800 at position 2)"),
    (lambda r: r.rank("q", ["a", "b\udfff"]), "docs[1]: not valid Unicode text"),
    (lambda r: r.rank(Query("1", None), ["a"]), "query.text: expected a text, got NoneType"),
    (lambda r: r.rank("q", ["a"], qid="two words"), "qid: expected a non-empty id without whitespace"),
    (lambda r: r.rank("q", [Candidate("d", None)]), "docs[0].text: expected a text, got NoneType"),
    (lambda r: r.rank("q", [Candidate("d", "a"), Candidate("d", "b")]), "docs[1]: docid 'd' repeats docs[0]"),
    (lambda r: r.rank("q", ["a", Candidate("0", "b")]), "docs[1]: docid '0' repeats docs[0]"),
    (lambda r: r.rank("q", [Candidate("d", "a", score=float("nan"))]), "docs[0].score: expected a finite number"),
    (lambda r: r.rerank([Request(Query("1", "q"), [Candidate("d", 7)])]), "requests[0].candidates[0].text"),
    (lambda r: r.rerank(["q"]), "requests[0]: expected a Request, got str"),
    (lambda r: r.compute_score([("q", None)]), "pairs[0][1] (passage): expected a text, got NoneType"),
    (lambda r: r.compute_score([(None, "p")]), "pairs[0][0] (query): expected a text, got NoneType"),
    (lambda r: r.compute_score([("q", "p"), ("q",)]), "pairs[1]: expected a (query, passage) pair of two texts"),
    (lambda r: r.compute_score((None, "p")), "pairs[0][0] (query): expected a text, got NoneType"),
    (lambda r: r.compute_score("q"), "pairs: expected a (query, passage) pair or a list of them, got str"),
    (lambda r: r.compute_score(None), "pairs: expected a (query, passage) pair or a list of them, got NoneType"),
]


@pytest.mark.parametrize("call,message", CASES, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(CASES)])
def test_bad_api_input_is_refused_by_name(rankers, call, message: str) -> None:
    with pytest.raises(InputError) as info:
        call(rankers["dense"])
    assert message in str(info.value)


def test_valid_inputs_still_rank(rankers) -> None:
    dense = rankers["dense"]
    assert [c.docid for c in dense.rank("", ["", "fleas"]).candidates] in (["0", "1"], ["1", "0"])
    assert len(dense.rank("fleas", ("a", "b")).candidates) == 2  # a tuple is a list of texts too
    assert dense.rank("fleas", []).candidates == []
    cands = [Candidate("x", "fleas live", 2.0), Candidate("y", "Paris", 1.0)]
    assert sorted(c.docid for c in dense.rank(Query("7", "fleas"), cands).candidates) == ["x", "y"]


# ------------------------------------------------------------------ the fuzz

#: valid text: any Unicode but lone surrogates, short or huge (a pasted document), empty
VALID = st.one_of(
    st.text(max_size=30),
    st.just(""),
    st.builds(lambda c, n: c * n, st.characters(), st.sampled_from([300, 200_000])),  # huge, one character
    st.builds(lambda t, n: t * n, st.text(min_size=1, max_size=8), st.sampled_from([50, 30_000])),  # huge, words
)
VALID_DOCS = st.one_of(st.lists(VALID, max_size=5), st.tuples(VALID, VALID))
#: a lone surrogate inside a text: a Python string that no file holds and no tokenizer reads
SURROGATE = st.builds(
    lambda a, s, b: a + s + b, st.text(max_size=5), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), VALID
)
JUNK = st.one_of(
    st.none(), st.integers(), st.floats(), st.binary(max_size=4), st.lists(st.text(max_size=3), max_size=2)
)
BAD_TEXT = st.one_of(SURROGATE, JUNK)
#: (query, docs) with at least one thing wrong: the query, docs itself, or one document among good ones
INVALID = st.one_of(
    st.tuples(BAD_TEXT, VALID_DOCS),
    st.tuples(VALID, st.one_of(VALID, JUNK, st.dictionaries(st.text(max_size=3), VALID, max_size=2))),
    st.tuples(
        VALID,
        st.builds(
            lambda docs, i, bad: [*docs[:i], bad, *docs[i:]], st.lists(VALID, max_size=4), st.integers(0, 4), BAD_TEXT
        ),
    ),
)
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run: CI failures reproduce
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize("name", sorted(TINY))
def test_fuzz_rank_gives_a_permutation_for_any_text(rankers, name: str) -> None:
    ranker = rankers[name]
    budget = ranker.family.budgets()

    @FUZZ
    @given(query=VALID, docs=VALID_DOCS)
    def check(query: str, docs: list[str] | tuple[str, ...]) -> None:
        result = ranker.rank(query, docs)
        assert sorted(c.docid for c in result.candidates) == sorted(str(i) for i in range(len(docs)))
        assert [c.text for c in sorted(result.candidates, key=lambda c: int(c.docid))] == list(docs)
        scores = [c.score for c in result.candidates]
        assert all(a > b for a, b in zip(scores, scores[1:]))
        assert result.query.text == query  # the user's text, whatever the model read
        if budget.query is not None and len(query) > budget.query.max_tokens * MAX_CHARS_PER_TOKEN:
            assert result.stats["truncated_queries"] == 1

    check()


@pytest.mark.parametrize("name", sorted(TINY))
def test_fuzz_rank_refuses_anything_else_with_an_input_error(rankers, name: str) -> None:
    ranker = rankers[name]

    @FUZZ
    @given(case=INVALID)
    def check(case: tuple[Any, Any]) -> None:
        with pytest.raises(InputError):
            ranker.rank(*case)

    check()
