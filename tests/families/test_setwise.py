"""The setwise strategy with fake, deterministic judges: llm-rankers' heapsort and bubblesort, top k, batching."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import pytest

from perank.ranking.base import make_request
from perank.ranking.choices import Choice, Picks
from perank.ranking.setwise import SetwiseReranker
from perank.types import InputError, Request

Judge = Callable[[str, tuple[str, ...]], int | None]


def best_relevance(query: str, passages: tuple[str, ...]) -> int | None:
    """A perfect judge over "doc<relevance>" passages."""
    scores = [int(p[3:].split("-")[0]) for p in passages]
    return scores.index(max(scores))


def hashed(query: str, passages: tuple[str, ...]) -> int | None:
    """An arbitrary deterministic judge: any label (in or out of the set) or none, by a hash of the prompt."""
    h = hashlib.md5(f"{query}|{'|'.join(passages)}".encode()).digest()[0]
    return None if h % 7 == 0 else h % (len(passages) + 1)


class FakeSetwise(SetwiseReranker):
    def __init__(self, judge: Judge, method: str = "heapsort", num_child: int = 3, k: int = 10, batch_size: int = 8):
        self.configure_setwise(method, num_child, k, batch_size)
        self.judge = judge
        self.batches: list[list[Choice]] = []

    def choose_batch(self, choices: list[Choice]) -> Picks:
        self.batches.append(choices)
        return Picks(
            picks=[self.judge(c.query, c.passages) for c in choices],
            prompt_tokens=[len(c.passages) for c in choices],
            generated_tokens=[1] * len(choices),
        )


def request(relevance: list[int], query: str = "q") -> Request:
    return make_request(query, [f"doc{r}" for r in relevance])


# --- llm-rankers' setwise heapsort / bubblesort written directly (recursion and loops) as the oracle; the two
# --- edge guards perank documents (labels outside the set pick the first; no 0/1-passage prompts) are applied ---


def reference(method: str, texts: list[str], judge: Judge, c: int, k: int, query: str) -> tuple[list[int], int]:
    calls = 0

    def best(group: list[int]) -> int:
        nonlocal calls
        if len(group) < 2:
            return 0
        calls += 1
        pick = judge(query, tuple(texts[i] for i in group))
        return pick if pick is not None and pick < len(group) else 0

    n = len(texts)
    arr = list(range(n))
    if method == "heapsort":

        def heapify(size: int, i: int) -> None:
            if c * i + 1 < size:
                inds = [i] + list(range(c * i + 1, min(c * (i + 1) + 1, size)))
                largest = inds[best([arr[j] for j in inds])]
                if largest != i:
                    arr[i], arr[largest] = arr[largest], arr[i]
                    heapify(size, largest)

        for i in range(n // c, -1, -1):
            heapify(n, i)
        for done, i in enumerate(range(n - 1, 0, -1), start=1):
            arr[i], arr[0] = arr[0], arr[i]
            if done == k:
                break
            heapify(i, 0)
        ranking = list(reversed(arr))
    else:
        ranking, last_start = arr, n - (c + 1)
        for i in range(k):
            s, e, changed = last_start, last_start + c + 1, False
            while True:
                if s < i:
                    s = i
                b = best(ranking[s:e])
                if b != 0:
                    ranking[s], ranking[s + b] = ranking[s + b], ranking[s]
                    if not changed:
                        changed = True
                        if last_start != n - (c + 1) and b == len(ranking[s:e]) - 1:
                            last_start += len(ranking[s:e]) - 1
                if s == i:
                    break
                if not changed:
                    last_start -= c
                s -= c
                e -= c
    top = ranking[:k]
    return top + [i for i in range(n) if i not in top], calls


@pytest.mark.parametrize("method", ["heapsort", "bubblesort"])
@pytest.mark.parametrize(
    "n,c,k", [(0, 3, 10), (1, 3, 10), (3, 3, 10), (7, 3, 10), (20, 3, 10), (25, 2, 5), (13, 5, 13)]
)
def test_sorts_match_llm_rankers_step_for_step(method: str, n: int, c: int, k: int) -> None:
    for seed in range(6):
        rng = random.Random(seed)
        texts = [f"doc{rng.randint(0, 99)}-{i}" for i in range(n)]
        result = FakeSetwise(hashed, method, c, k).rerank([make_request(f"query {seed}", texts)])[0]
        expected, calls = reference(method, texts, hashed, c, k, f"query {seed}")
        assert [int(x.docid) for x in result.candidates] == expected
        assert result.stats["llm_calls"] == calls


@pytest.mark.parametrize("method", ["heapsort", "bubblesort"])
@pytest.mark.parametrize("c", [1, 3, 4])
def test_a_consistent_judge_sorts_the_top_k_and_keeps_the_rest_in_input_order(method: str, c: int) -> None:
    relevance = [3, 14, 7, 0, 11, 9, 1, 13, 5, 12, 2, 8, 6, 10, 4, 15, 16]
    got = [int(x.docid) for x in FakeSetwise(best_relevance, method, c, k=6).rerank([request(relevance)])[0].candidates]
    top = sorted(range(len(relevance)), key=lambda i: -relevance[i])[:6]
    assert got[:6] == top
    assert got[6:] == [i for i in range(len(relevance)) if i not in top]


def test_prompt_sizes_follow_num_child() -> None:
    heap = FakeSetwise(best_relevance, "heapsort", num_child=3)
    heap.rerank([request(list(range(20)))])
    sizes = {len(c.passages) for b in heap.batches for c in b}
    assert max(sizes) == 4 and min(sizes) >= 2
    bubble = FakeSetwise(best_relevance, "bubblesort", num_child=3, k=2)
    bubble.rerank([request(list(range(20)))])
    first_pass = [c.passages for b in bubble.batches for c in b][:2]
    assert [len(p) for p in first_pass] == [4, 4]  # windows of c + 1 from the bottom, stride c


def test_queries_are_batched_together() -> None:
    reqs = [request([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5], f"q{i}") for i in range(4)]
    alone = [FakeSetwise(best_relevance).rerank([r])[0] for r in reqs]
    ranker = FakeSetwise(best_relevance, batch_size=3)
    together = ranker.rerank(reqs)
    assert [[c.docid for c in r.candidates] for r in together] == [[c.docid for c in r.candidates] for r in alone]
    assert max(len(b) for b in ranker.batches) == 3
    assert any(len({c.query for c in b}) > 1 for b in ranker.batches)
    for r in together:
        scores = [c.score for c in r.candidates]
        assert all(a > b for a, b in zip(scores, scores[1:]))
        assert r.stats["tokens_generated"] == r.stats["llm_calls"] > 0


def test_options_are_checked() -> None:
    with pytest.raises(InputError, match="unknown method 'allpair'"):
        FakeSetwise(best_relevance, "allpair")
    with pytest.raises(InputError, match="num_child must be at most 22"):
        FakeSetwise(best_relevance, num_child=23)
    with pytest.raises(InputError, match="num_child must be a positive integer"):
        FakeSetwise(best_relevance, num_child=0)
    with pytest.raises(InputError, match="k must be a positive integer"):
        FakeSetwise(best_relevance, k=-1)
