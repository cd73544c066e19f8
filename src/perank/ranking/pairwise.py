"""The pairwise strategy: rank by asking which of two passages is more relevant, in both orders.

The algorithms are those of llm-rankers' ``pairwise.py`` (github.com/ielab/llm-rankers), step for step, so the
same model answers give the same ranking:

- ``allpair``: every unordered pair is asked in both orders, n(n-1) prompts, all in one step (so they batch
  across pairs and queries). A pair whose two answers agree gives its winner 1; a disagreement (or an answer
  naming neither passage) gives each 0.5. The score is the total; ties keep the first-stage order.
- ``heapsort`` and ``bubblesort``: only the top ``k`` are sorted (the rest keep the first-stage order), and
  ``a > b`` only when BOTH orders agree: the prompt (a, b) picks its first passage AND the prompt (b, a) its
  second. Each comparison sends its two prompts together. Scores are ``N - r`` for the final rank ``r``.

Deliberate difference: llm-rankers' ``allpair`` keeps only the first ``k`` by score and puts the rest in
first-stage order; here every candidate is ranked by its win total (the top ``k`` are the same), ties keeping
the first-stage order (llm-rankers breaks them by the order in which a passage first scored).

A family implements :meth:`perank.ranking.choices.ChoiceReranker.choose_batch` (each :class:`Choice` has two
passages; the pick is 0 for the first, 1 for the second, ``None`` for neither) and calls
:meth:`PairwiseReranker.configure_pairwise` in ``__init__``.
"""

from __future__ import annotations

from collections.abc import Generator
from itertools import combinations

from perank.ranking.choices import Algorithm, ChoiceReranker, Group, check_method, check_positive, top_k_then_input

PAIRWISE_METHODS = ("allpair", "heapsort", "bubblesort")


def allpair(n: int) -> Algorithm:
    """Every pair in both orders in one step; score = wins (1 when both orders agree, else 0.5 each)."""
    pairs = list(combinations(range(n), 2))
    picks = (yield [g for i, j in pairs for g in ((i, j), (j, i))]) if pairs else []
    wins = [0.0] * n
    for t, (i, j) in enumerate(pairs):
        first, second = picks[2 * t], picks[2 * t + 1]
        if first == 0 and second == 1:
            wins[i] += 1.0
        elif first == 1 and second == 0:
            wins[j] += 1.0
        else:  # the two orders disagree (or an answer named neither passage)
            wins[i] += 0.5
            wins[j] += 0.5
    order = sorted(range(n), key=lambda i: (-wins[i], i))
    return order, [wins[i] for i in order]


def beats(a: int, b: int) -> Generator[list[Group], list[int | None], bool]:
    """``a > b``: asked in both orders at once; true only when (a, b) picks a AND (b, a) picks a."""
    picks = yield [(a, b), (b, a)]
    return picks[0] == 0 and picks[1] == 1


def heapsort(n: int, k: int) -> Algorithm:
    """llm-rankers' binary max-heap sort, stopped after the top ``k`` are extracted."""
    arr = list(range(n))

    def heapify(size: int, i: int) -> Generator[list[Group], list[int | None], None]:
        largest, left, right = i, 2 * i + 1, 2 * i + 2
        if left < size and (yield from beats(arr[left], arr[i])):
            largest = left
        if right < size and (yield from beats(arr[right], arr[largest])):
            largest = right
        if largest != i:
            arr[i], arr[largest] = arr[largest], arr[i]
            yield from heapify(size, largest)

    for i in range(n // 2, -1, -1):
        yield from heapify(n, i)
    for ranked, i in enumerate(range(n - 1, 0, -1), start=1):
        arr[i], arr[0] = arr[0], arr[i]
        if ranked == k:
            break
        yield from heapify(i, 0)
    return top_k_then_input(arr[::-1], k), None


def bubblesort(n: int, k: int) -> Algorithm:
    """llm-rankers' bubble sort of the top ``k`` (bottom-up passes that skip the unchanged tail)."""
    ranking = list(range(n))
    last_end = n - 1
    for i in range(min(k, n)):
        current = last_end
        changed = False
        while current > i:
            if (yield from beats(ranking[current], ranking[current - 1])):
                ranking[current - 1], ranking[current] = ranking[current], ranking[current - 1]
                if not changed:
                    changed = True
                    if last_end != n - 1:  # the unchanged pairs at the bottom need no new look
                        last_end += 1
            if not changed:
                last_end -= 1
            current -= 1
    return top_k_then_input(ranking, k), None


class PairwiseReranker(ChoiceReranker):
    """A reranker that sorts by pairwise preferences; see the module docstring."""

    method: str = "heapsort"
    k: int = 10

    def configure_pairwise(self, method: str, k: int, batch_size: int) -> None:
        """Validate and set the strategy's options."""
        self.method = check_method(method, PAIRWISE_METHODS)
        self.k = check_positive("k", k)
        self.batch_size = check_positive("batch_size", batch_size)

    def algorithm(self, n: int) -> Algorithm:
        if self.method == "allpair":
            return allpair(n)
        if self.method == "heapsort":
            return heapsort(n, self.k)
        return bubblesort(n, self.k)
