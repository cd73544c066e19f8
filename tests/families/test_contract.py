"""The contract every registered family keeps, checked on each reranker's tiny configuration.

Each family's manifest gives every reranker a tiny configuration (``RerankerEntry(..., tiny=...)``: constructor
options over the test suite's tiny models; the test below fails for a reranker without one), so a new family gets
these checks by declaring itself: its results are permutations of the candidates with strictly decreasing scores
and ranks 1..n; 0, 1 and fewer-than-a-window candidates work; batch sizes 1 and 8 give the same rankings;
``describe()`` names the family and its model; the public facade ``perank.Reranker`` reaches it.
"""

from __future__ import annotations

import pytest

from helpers.catalogue import TINY
from perank import Reranker, list_rerankers
from perank.ranking.family import TinyFixtures
from perank.ranking.options import constructor_parameters
from perank.ranking.pointwise import PointwiseReranker
from perank.ranking.registry import build_reranker, get_reranker_class
from perank.types import Candidate, InputError, Query, Request, Result


def canonical_families() -> list[str]:
    """Each registered reranker once: an alias (``listwise-embedding``) folds into the name its class calls itself
    (``pe-rank``), and that name must build the same class."""
    names = set()
    for name in list_rerankers():
        cls = get_reranker_class(name)
        own = getattr(cls, "name", None)
        assert get_reranker_class(own) is cls, f"{name!r} folds into {own!r}, which is registered to another class"
        names.add(own)
    return sorted(names)


def batched_families() -> list[str]:
    """The families of :data:`TINY` whose constructor takes ``batch_size`` (all but ``identity``, which calls no
    model, so it has nothing to batch)."""
    return sorted(name for name in TINY if "batch_size" in constructor_parameters(get_reranker_class(name)))


def make_request(qid: str, n: int) -> Request:
    texts = ["fleas live for months", "concrete floors cost", "a judgment declares rights", "flea eggs hatch"]
    cands = [
        Candidate(docid=f"{qid}-d{i}", text=f"{texts[i % len(texts)]} ({i})", score=float(n - i), rank=i + 1)
        for i in range(n)
    ]
    return Request(query=Query(qid=qid, text=f"how long do fleas live {qid}"), candidates=cands)


def check(request: Request, result: Result) -> None:
    assert result.query == request.query
    assert sorted(c.docid for c in result.candidates) == sorted(c.docid for c in request.candidates)
    scores = [c.score for c in result.candidates]
    assert all(a > b for a, b in zip(scores, scores[1:])), f"scores not strictly decreasing: {scores}"
    assert [c.rank for c in result.candidates] == list(range(1, len(request.candidates) + 1))


@pytest.fixture(scope="module")
def fixtures(tiny_fixtures: TinyFixtures) -> TinyFixtures:
    return tiny_fixtures


def test_every_registered_family_has_a_tiny_configuration() -> None:
    canonical = canonical_families()
    assert "pe-rank" in canonical and "listwise-embedding" not in canonical  # aliases are folded, not counted
    missing = sorted(set(canonical) - set(TINY))
    assert not missing, f"give these rerankers a tiny configuration in their family's manifest: {missing}"
    assert sorted(TINY) == canonical  # the manifests' tiny configurations are keyed by the classes' own names


def test_every_family_but_identity_takes_a_batch_size() -> None:
    """So that the batch-size test below covers every family with a model (identity has none to batch)."""
    assert sorted(set(TINY) - set(batched_families())) == ["identity"]


@pytest.mark.parametrize("name", sorted(TINY))
def test_results_are_permutations_with_decreasing_scores(name: str, tiny_reranker) -> None:
    ranker = tiny_reranker(name)
    requests = [make_request("a", 7), make_request("b", 3), make_request("c", 12)]
    results = ranker.rerank(requests)
    assert len(results) == len(requests)
    for request, result in zip(requests, results):
        check(request, result)


@pytest.mark.parametrize("name", sorted(TINY))
def test_zero_one_and_fewer_than_a_window(name: str, tiny_reranker) -> None:
    ranker = tiny_reranker(name)
    requests = [make_request("none", 0), make_request("one", 1), make_request("few", 3)]
    results = ranker.rerank(requests)
    for request, result in zip(requests, results):
        check(request, result)
    assert ranker.rerank([]) == []


@pytest.mark.parametrize("name", batched_families())
def test_batch_sizes_one_and_eight_agree(name: str, tiny_reranker) -> None:
    requests = [make_request(f"q{i}", n) for i, n in enumerate([7, 2, 9, 5, 1, 6, 8, 4])]
    one = tiny_reranker(name, batch_size=1)
    eight = tiny_reranker(name, batch_size=8)
    assert one.options["batch_size"] == 1 and eight.options["batch_size"] == 8
    singly = [one.rerank([r])[0] for r in requests]
    together = eight.rerank(requests)
    for a, b in zip(singly, together):
        assert [c.docid for c in a.candidates] == [c.docid for c in b.candidates]
        assert [c.score for c in a.candidates] == pytest.approx([c.score for c in b.candidates], abs=1e-4)


@pytest.mark.parametrize("name", sorted(TINY))
def test_describe_names_the_family_and_its_model(name: str, tiny_reranker) -> None:
    info = tiny_reranker(name).describe()
    assert info["reranker"] == name
    assert "model" in info or "model_path" in info, f"describe() of {name} does not name its model: {info}"


@pytest.mark.parametrize("name", sorted(TINY))
def test_public_facade_ranks_texts(name: str, fixtures) -> None:
    ranker = Reranker(name, **TINY[name](fixtures))
    assert ranker.name == name
    docs = ["fleas live up to a year", "concrete costs money", "flea life cycle is weeks"]
    query = "how long is the life cycle of a flea"
    result = ranker.rank(query, docs)
    assert sorted(c.docid for c in result.candidates) == ["0", "1", "2"]
    assert [c.text for c in result.candidates] == [docs[int(c.docid)] for c in result.candidates]  # ids = positions
    assert [c.rank for c in result.candidates] == [1, 2, 3]
    assert result.top_k(2) == result.candidates[:2] and result.top_k(5) == result.candidates
    if isinstance(ranker.family, PointwiseReranker) and ranker.family.scores_each_pair:
        pairs = [(query, d) for d in docs]
        scores = ranker.compute_score(pairs)
        assert isinstance(scores, list) and len(scores) == 3
        assert ranker.compute_score(pairs[0]) == pytest.approx([scores[0]], abs=1e-5)
        normalized = ranker.compute_score(pairs, normalize=True)
        assert all(0.0 <= s <= 1.0 for s in normalized)
        # ranking agrees with the pair scores
        by_score = sorted(range(3), key=lambda i: -scores[i])
        assert [c.docid for c in result.candidates] == [str(i) for i in by_score]
    else:
        with pytest.raises(InputError, match="no per-pair score"):
            ranker.compute_score([("q", "p")])


def test_facade_refuses_unknown_names_and_bad_docs() -> None:
    with pytest.raises(InputError, match="unknown reranker 'nope'"):
        Reranker("nope")
    ranker = Reranker("identity")
    with pytest.raises(InputError, match="not one string"):
        ranker.rank("q", "a single string")
    with pytest.raises(InputError, match=r"pairs\[0\]"):
        build_reranker("dense", model_path=None).compute_score([("only one",)])  # type: ignore[list-item]
