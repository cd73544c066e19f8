"""The core shared by the comparison strategies (pairwise and setwise): "which of these passages is best?".

A pairwise comparison is a labelled set of two passages and a setwise one a set of up to 23, so both strategies
ask the family ONE kind of question (:class:`Choice`) through ONE batched hook,
:meth:`ChoiceReranker.choose_batch`, which answers with the index of the passage the model picked (or ``None``
when its answer named no passage of the set). The strategies know no prompt and no model.

The sorting algorithms (heapsort, bubblesort, all pairs) are written as generators (:data:`Algorithm`): each
``yield`` hands over the questions it needs answered next (one group of candidate indices per prompt) and
receives one pick per group. :meth:`ChoiceReranker.rerank` runs the generators of every query of a batch in
lockstep, so the questions of all queries at the same step go to the model together, in chunks of
``batch_size`` prompts (sorted by length, so that little is padding). A comparison-based sort is sequential
within a query; batching across queries is what keeps the model busy.

Per-query stats: ``latency_s`` (each model call's wall time shared over its prompts by token count),
``llm_calls`` (prompts sent), ``tokens_processed`` (prompt tokens), ``tokens_generated`` and
``truncated_passages`` (passages the family cut, counted once per passage).
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from perank.ranking.base import BaseReranker, reorder
from perank.ranking.pointwise import length_sorted_batches
from perank.ranking.sliding_window import listwise_scores, share
from perank.types import InputError, Request, Result

#: a question for the model: the indices (into the query's candidates) of the passages of one prompt, in label order
Group = tuple[int, ...]
#: ``(order, scores)``: candidate indices best first and one score per position (``None``: ``N - r`` by rank)
Ranking = tuple[list[int], list[float] | None]
#: a ranking algorithm over one query: yields the groups to ask next, receives one pick per group
Algorithm = Generator[list[Group], list[int | None], Ranking]


@dataclass(frozen=True)
class Choice:
    """One prompt: a query and the (already truncated) texts of the passages it labels, in label order."""

    query: str
    passages: tuple[str, ...]


@dataclass
class Picks:
    """A family's answers to a list of :class:`Choice` prompts, one entry per prompt.

    ``picks[i]`` is the index into ``passages`` of the passage the model chose, ``None`` when its answer named
    none of them; ``prompt_tokens`` and ``generated_tokens`` count the model's real (non-pad) tokens.
    """

    picks: list[int | None]
    prompt_tokens: list[int]
    generated_tokens: list[int]


def pick_index(pick: int | None, size: int) -> int:
    """The position a pick selects, falling back to the first passage (llm-rankers' ``best_ind = 0``) when the
    model's answer named no passage of the set."""
    return pick if pick is not None and 0 <= pick < size else 0


def top_k_then_input(ranking: list[int], k: int) -> list[int]:
    """The first ``k`` of ``ranking``, then every other candidate in its first-stage order (llm-rankers only
    trusts the sorted top k of a partial sort; the rest keep the order they came in)."""
    head = ranking[:k]
    chosen = set(head)
    return head + [i for i in sorted(ranking) if i not in chosen]


@dataclass
class _Run:
    """One query in progress: its passage texts, algorithm, pending questions and accounting."""

    request: Request
    texts: list[str]
    algorithm: Algorithm
    pending: list[Group] = field(default_factory=list)
    answers: list[int | None] = field(default_factory=list)
    ranking: Ranking | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    def advance(self, answers: list[int | None] | None) -> None:
        """Send the answers (``None`` to start) and keep the next questions, or the final ranking."""
        try:
            while True:
                groups = next(self.algorithm) if answers is None else self.algorithm.send(answers)
                if groups:
                    self.pending, self.answers = list(groups), [None] * len(groups)
                    return
                answers = []  # an empty step needs no model call
        except StopIteration as stop:
            self.pending, self.ranking = [], stop.value


class ChoiceReranker(BaseReranker):
    """A reranker that sorts by asking a model to pick the best passage of small labelled sets.

    Subclasses (:class:`perank.ranking.pairwise.PairwiseReranker`, :class:`perank.ranking.setwise.SetwiseReranker`)
    provide :meth:`algorithm`; a family provides :meth:`choose_batch` and, to truncate passages,
    :meth:`passage_texts`.
    """

    #: prompts per model call
    batch_size: int = 8

    @abstractmethod
    def choose_batch(self, choices: list[Choice]) -> Picks:
        """The model's pick for each prompt (one batched call; at most ``batch_size`` prompts)."""

    @abstractmethod
    def algorithm(self, n: int) -> Algorithm:
        """The ranking algorithm for a query of ``n`` candidates."""

    def passage_texts(self, request: Request) -> tuple[list[str], int]:
        """The texts the prompts show for the request's candidates, and how many were truncated (default: as
        given, none)."""
        return [c.text for c in request.candidates], 0

    def query_text(self, request: Request) -> str:
        """The query as the prompts show it."""
        return request.query.text

    def rerank_within_budget(self, requests: list[Request]) -> list[Result]:
        runs: list[_Run] = []
        for request in requests:
            texts, truncated = self.passage_texts(request)
            stats = {
                "latency_s": 0.0,
                "llm_calls": 0,
                "tokens_processed": 0,
                "tokens_generated": 0,
                "truncated_passages": int(truncated),
            }
            runs.append(_Run(request, texts, self.algorithm(len(request.candidates)), stats=stats))
        for run in runs:
            run.advance(None)
        while any(run.pending for run in runs):
            self._answer([run for run in runs if run.pending])
            for run in runs:
                if run.pending:
                    run.advance(run.answers)
        return [self._result(run) for run in runs]

    def _answer(self, runs: list[_Run]) -> None:
        """Ask every pending question of ``runs`` in length-sorted chunks of ``batch_size`` prompts."""
        slots = [(run, g) for run in runs for g in range(len(run.pending))]
        choices = [
            Choice(self.query_text(run.request), tuple(run.texts[i] for i in run.pending[g])) for run, g in slots
        ]
        lengths = [len(c.query) + sum(len(p) for p in c.passages) for c in choices]
        for chunk in length_sorted_batches(lengths, max(1, int(self.batch_size))):
            start = time.perf_counter()
            out = self.choose_batch([choices[j] for j in chunk])
            elapsed = time.perf_counter() - start
            if not (len(out.picks) == len(out.prompt_tokens) == len(out.generated_tokens) == len(chunk)):
                raise ValueError(
                    f"{type(self).__name__}.choose_batch answered {len(out.picks)} of {len(chunk)} prompts"
                )
            times = share(elapsed, [p + g for p, g in zip(out.prompt_tokens, out.generated_tokens)])
            for j, pick, n_in, n_out, t in zip(chunk, out.picks, out.prompt_tokens, out.generated_tokens, times):
                run, g = slots[j]
                run.answers[g] = pick
                run.stats["llm_calls"] += 1
                run.stats["tokens_processed"] += int(n_in)
                run.stats["tokens_generated"] += int(n_out)
                run.stats["latency_s"] += t

    @staticmethod
    def _result(run: _Run) -> Result:
        n = len(run.request.candidates)
        order, scores = run.ranking if run.ranking is not None else (list(range(n)), None)
        return reorder(run.request, order, scores if scores is not None else listwise_scores(n), run.stats)


def check_positive(name: str, value: object) -> int:
    """``value`` as a positive int, else an :class:`InputError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_method(value: object, methods: Sequence[str]) -> str:
    """``value`` if it is one of ``methods``, else an :class:`InputError` listing them."""
    if value not in methods:
        raise InputError(f"unknown method {value!r}; choose one of {', '.join(methods)}")
    return str(value)
