"""The setwise strategy: rank by asking which passage of a small labelled set is the most relevant.

The algorithms are those of llm-rankers' ``setwise.py`` (github.com/ielab/llm-rankers), step for step:

- ``heapsort``: a ``c``-ary max-heap (``c = num_child``); each heapify step shows a node and its up to ``c``
  children in one prompt, the node first. Stops after the top ``k`` are extracted.
- ``bubblesort``: windows of ``c + 1`` passages, moved up by ``c`` from the bottom of the list; the picked
  passage goes to the window's top. ``k`` passes, skipping the unchanged tail as llm-rankers does.

Only the top ``k`` are sorted; the rest keep the first-stage order. Scores are ``N - r`` for the final rank.

Deliberate differences, both at edges llm-rankers does not guard: an answer naming a label outside the set
counts as the first passage (llm-rankers' heapsort does so; its bubblesort would swap with a passage outside
the window, or fail), and a bubblesort window of fewer than two passages (``k`` close to the list length) is
not sent to the model (llm-rankers asks about one passage, or none).

A family implements :meth:`perank.ranking.choices.ChoiceReranker.choose_batch` (the pick is the index of the
chosen passage, ``None`` for none) and calls :meth:`SetwiseReranker.configure_setwise` in ``__init__``.
"""

from __future__ import annotations

from collections.abc import Generator

from perank.ranking.choices import (
    Algorithm,
    ChoiceReranker,
    Group,
    check_method,
    check_positive,
    pick_index,
    top_k_then_input,
)
from perank.types import InputError

SETWISE_METHODS = ("heapsort", "bubblesort")
#: the labels a prompt can carry (llm-rankers: A-W), so at most this many passages per prompt
MAX_SET_SIZE = 23


def best_of(group: list[int]) -> Generator[list[Group], list[int | None], int]:
    """The position in ``group`` of the passage the model picks (the first when its answer names none)."""
    picks = yield [tuple(group)]
    return pick_index(picks[0], len(group))


def heapsort(n: int, k: int, num_child: int) -> Algorithm:
    """llm-rankers' setwise heapsort: a ``num_child``-ary heap, one prompt per heapify step."""
    arr = list(range(n))
    c = num_child

    def heapify(size: int, i: int) -> Generator[list[Group], list[int | None], None]:
        if c * i + 1 < size:  # the node has children
            inds = [i, *range(c * i + 1, min(c * (i + 1) + 1, size))]
            largest = inds[(yield from best_of([arr[j] for j in inds]))]
            if largest != i:
                arr[i], arr[largest] = arr[largest], arr[i]
                yield from heapify(size, largest)

    for i in range(n // c, -1, -1):
        yield from heapify(n, i)
    for ranked, i in enumerate(range(n - 1, 0, -1), start=1):
        arr[i], arr[0] = arr[0], arr[i]
        if ranked == k:
            break
        yield from heapify(i, 0)
    return top_k_then_input(arr[::-1], k), None


def bubblesort(n: int, k: int, num_child: int) -> Algorithm:
    """llm-rankers' setwise bubblesort: windows of ``num_child + 1`` with stride ``num_child``, bottom up."""
    ranking = list(range(n))
    c, size = num_child, num_child + 1
    last_start = n - size
    for i in range(k):
        start, end = last_start, last_start + size
        changed = False
        while True:
            start = max(start, i)
            window = ranking[start:end]
            best = (yield from best_of(window)) if len(window) > 1 else 0
            if best != 0:
                ranking[start], ranking[start + best] = ranking[start + best], ranking[start]
                if not changed:
                    changed = True
                    if last_start != n - size and best == len(window) - 1:
                        last_start += len(window) - 1
            if start == i:
                break
            if not changed:
                last_start -= c
            start -= c
            end -= c
    return top_k_then_input(ranking, k), None


class SetwiseReranker(ChoiceReranker):
    """A reranker that sorts by picking the best of labelled sets; see the module docstring."""

    method: str = "heapsort"
    k: int = 10
    num_child: int = 3

    def configure_setwise(self, method: str, num_child: int, k: int, batch_size: int) -> None:
        """Validate and set the strategy's options."""
        self.method = check_method(method, SETWISE_METHODS)
        self.num_child = check_positive("num_child", num_child)
        if num_child + 1 > MAX_SET_SIZE:
            raise InputError(f"num_child must be at most {MAX_SET_SIZE - 1} (labels A-W), got {num_child}")
        self.k = check_positive("k", k)
        self.batch_size = check_positive("batch_size", batch_size)

    def algorithm(self, n: int) -> Algorithm:
        if self.method == "heapsort":
            return heapsort(n, self.k, self.num_child)
        return bubblesort(n, self.k, self.num_child)
