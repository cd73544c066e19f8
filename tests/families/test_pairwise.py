"""The pairwise strategy with fake, deterministic comparators: sorting, the both-orders rule, top k, batching."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import pytest

from perank.ranking.base import make_request
from perank.ranking.choices import Choice, Picks
from perank.ranking.pairwise import PairwiseReranker
from perank.types import InputError, Request

Judge = Callable[[str, str, str], int | None]


def by_relevance(query: str, a: str, b: str) -> int | None:
    """A perfect judge: passages are "doc<relevance>"; the more relevant one wins in either order."""
    return 0 if int(a[3:]) > int(b[3:]) else 1


def always_first(query: str, a: str, b: str) -> int | None:
    return 0


def hashed(query: str, a: str, b: str) -> int | None:
    """An inconsistent but deterministic judge: the answer depends only on the prompt, so any algorithm that
    asks the same questions in the same order gets the same answers."""
    return [0, 1, None][hashlib.md5(f"{query}|{a}|{b}".encode()).digest()[0] % 3]


class FakePairwise(PairwiseReranker):
    def __init__(self, judge: Judge, method: str = "heapsort", k: int = 10, batch_size: int = 8) -> None:
        self.configure_pairwise(method, k, batch_size)
        self.judge = judge
        self.batches: list[list[Choice]] = []

    def choose_batch(self, choices: list[Choice]) -> Picks:
        self.batches.append(choices)
        return Picks(
            picks=[self.judge(c.query, *c.passages) for c in choices],
            prompt_tokens=[10] * len(choices),
            generated_tokens=[1] * len(choices),
        )


def request(relevance: list[int], query: str = "q") -> Request:
    return make_request(query, [f"doc{r}" for r in relevance])


def order(ranker: PairwiseReranker, req: Request) -> list[int]:
    return [int(c.docid) for c in ranker.rerank([req])[0].candidates]


# --- a direct port of llm-rankers' heapsort / bubblesort (recursion and loops, no generators) as the oracle ---


def reference(method: str, texts: list[str], judge: Judge, k: int, query: str = "q") -> tuple[list[int], int]:
    calls = 0

    def gt(a: int, b: int) -> bool:
        nonlocal calls
        calls += 2
        return judge(query, texts[a], texts[b]) == 0 and judge(query, texts[b], texts[a]) == 1

    n = len(texts)
    arr = list(range(n))
    if method == "heapsort":

        def heapify(size: int, i: int) -> None:
            largest, left, right = i, 2 * i + 1, 2 * i + 2
            if left < size and gt(arr[left], arr[i]):
                largest = left
            if right < size and gt(arr[right], arr[largest]):
                largest = right
            if largest != i:
                arr[i], arr[largest] = arr[largest], arr[i]
                heapify(size, largest)

        for i in range(n // 2, -1, -1):
            heapify(n, i)
        for done, i in enumerate(range(n - 1, 0, -1), start=1):
            arr[i], arr[0] = arr[0], arr[i]
            if done == k:
                break
            heapify(i, 0)
        ranking = list(reversed(arr))
    else:
        ranking, last_end = arr, n - 1
        for i in range(min(k, n)):
            cur, changed = last_end, False
            while True:
                if cur <= i:
                    break
                if gt(ranking[cur], ranking[cur - 1]):
                    ranking[cur - 1], ranking[cur] = ranking[cur], ranking[cur - 1]
                    if not changed:
                        changed = True
                        if last_end != n - 1:
                            last_end += 1
                if not changed:
                    last_end -= 1
                cur -= 1
    top = ranking[:k]
    return top + [i for i in range(n) if i not in top], calls


@pytest.mark.parametrize("method", ["heapsort", "bubblesort"])
@pytest.mark.parametrize("n,k", [(0, 10), (1, 10), (2, 1), (5, 10), (12, 10), (20, 5), (9, 9)])
def test_sorts_match_llm_rankers_step_for_step(method: str, n: int, k: int) -> None:
    for seed in range(6):
        rng = random.Random(seed)
        texts = [f"doc{rng.randint(0, 99)}-{i}" for i in range(n)]
        req = make_request(f"query {seed}", texts)
        ranker = FakePairwise(hashed, method, k)
        result = ranker.rerank([req])[0]
        expected, calls = reference(method, texts, hashed, k, f"query {seed}")
        assert [int(c.docid) for c in result.candidates] == expected
        assert result.stats["llm_calls"] == calls


@pytest.mark.parametrize("method", ["heapsort", "bubblesort"])
def test_a_consistent_judge_sorts_the_top_k_and_keeps_the_rest_in_input_order(method: str) -> None:
    relevance = [3, 14, 7, 0, 11, 9, 1, 13, 5, 12, 2, 8, 6, 10, 4]
    ranker = FakePairwise(by_relevance, method, k=5)
    got = order(ranker, request(relevance))
    top = sorted(range(15), key=lambda i: -relevance[i])[:5]
    assert got[:5] == top
    assert got[5:] == [i for i in range(15) if i not in top]
    full = order(FakePairwise(by_relevance, method, k=15), request(relevance))
    assert full == sorted(range(15), key=lambda i: -relevance[i])


@pytest.mark.parametrize("method", ["heapsort", "bubblesort", "allpair"])
def test_a_preference_needs_both_orders(method: str) -> None:
    """A judge that always answers "A" (or one that is right in one order only) prefers no passage: the same
    ranking as a judge that never answers; for bubblesort and allpair that is the input order."""
    relevance = [1, 5, 2, 4, 3]

    def right_when_first(query: str, a: str, b: str) -> int | None:
        return 0 if int(a[3:]) > int(b[3:]) else None

    def ranked(judge: Judge) -> list[str]:
        return [c.docid for c in FakePairwise(judge, method, k=5).rerank([request(relevance)])[0].candidates]

    silent = ranked(lambda q, a, b: None)
    assert ranked(always_first) == silent == ranked(right_when_first)
    if method != "heapsort":  # heapsort's extraction swaps move passages even when no comparison says so
        assert silent == ["0", "1", "2", "3", "4"]
    assert ranked(by_relevance) == ["1", "3", "4", "2", "0"]


def test_allpair_asks_every_ordered_pair_once_in_one_step_and_scores_wins() -> None:
    relevance = [2, 0, 4, 1, 3]
    ranker = FakePairwise(by_relevance, "allpair", batch_size=100)
    result = ranker.rerank([request(relevance)])[0]
    assert len(ranker.batches) == 1 and len(ranker.batches[0]) == 5 * 4
    asked = {c.passages for c in ranker.batches[0]}
    assert len(asked) == 20
    assert [c.docid for c in result.candidates] == ["2", "4", "0", "3", "1"]
    assert [c.score for c in result.candidates] == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert result.stats["llm_calls"] == 20 and result.stats["tokens_generated"] == 20


def test_allpair_disagreement_counts_half_to_each() -> None:
    # doc2 beats everyone in both orders; every other pair disagrees (the judge always says A)
    def judge(query: str, a: str, b: str) -> int | None:
        if "doc9" in (a, b):
            return 0 if a == "doc9" else 1
        return 0

    result = FakePairwise(judge, "allpair").rerank([request([1, 1, 9, 1])])[0]
    assert result.candidates[0].docid == "2" and result.candidates[0].score == 3.0
    assert [c.docid for c in result.candidates[1:]] == ["0", "1", "3"]  # 1.0 each: ties keep input order
    scores = [c.score for c in result.candidates]
    assert all(a > b for a, b in zip(scores, scores[1:]))


def test_queries_are_batched_together_and_batch_size_is_respected() -> None:
    reqs = [request([3, 1, 4, 1, 5, 9, 2, 6], f"q{i}") for i in range(3)]
    alone = [FakePairwise(by_relevance, "heapsort").rerank([r])[0] for r in reqs]
    ranker = FakePairwise(by_relevance, "heapsort", batch_size=4)
    together = ranker.rerank(reqs)
    assert [[c.docid for c in r.candidates] for r in together] == [[c.docid for c in r.candidates] for r in alone]
    assert max(len(b) for b in ranker.batches) == 4
    assert any(len({c.query for c in b}) > 1 for b in ranker.batches)  # one model call serves several queries
    assert sum(len(b) for b in ranker.batches) == sum(r.stats["llm_calls"] for r in together)
    for r in together:
        assert r.stats["tokens_processed"] == 10 * r.stats["llm_calls"]
        assert r.stats["llm_calls"] % 2 == 0  # each comparison sends both orders
        assert set(r.stats) == {
            "latency_s",
            "llm_calls",
            "tokens_processed",
            "tokens_generated",
            "truncated_passages",
            "truncated_queries",
        }


def test_scores_strictly_decrease_and_tiny_lists_need_no_model() -> None:
    ranker = FakePairwise(by_relevance, "bubblesort", k=3)
    result = ranker.rerank([request([5, 1, 7, 3, 9, 2])])[0]
    scores = [c.score for c in result.candidates]
    assert all(a > b for a, b in zip(scores, scores[1:]))
    ranker.batches.clear()
    results = ranker.rerank([make_request("q", []), make_request("q", ["doc1"])])
    assert [len(r.candidates) for r in results] == [0, 1] and ranker.batches == []


def test_options_are_checked() -> None:
    with pytest.raises(InputError, match="unknown method 'quick'"):
        FakePairwise(by_relevance, "quick")
    with pytest.raises(InputError, match="k must be a positive integer"):
        FakePairwise(by_relevance, "heapsort", k=0)
    with pytest.raises(InputError, match="batch_size"):
        FakePairwise(by_relevance, "heapsort", batch_size=0)
