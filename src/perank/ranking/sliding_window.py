"""The sliding-window strategy: rank ``window_size`` passages at a time, back to front, batched over queries.

Listwise rankers (PE-Rank's passage-token decoding, RankGPT-style text generation, DeAR, ...) differ only in
how they rank one window. The loop around it is here once: every query of a batch gets a
:class:`QueryState` with its windows (:func:`sliding_windows`, computed from its length); the k-th window of
every query that has one goes into ONE call of the family's :meth:`WindowReranker.rank_windows`, so the model
always runs on a batch; the family writes each window's new order back with :meth:`QueryState.place`; when all
windows are done each state becomes a result.

The schedule (RankGPT's, as PE-Rank uses it): windows move from the BACK of the list to the front by ``step``
so that a relevant passage found deep in the list can bubble up: each window's best passages land in the
overlap with the next window, which ranks them again. With the defaults (20, 10) a top-100 list takes 9
windows: (80, 100), (70, 90), ..., (0, 20). One deliberate difference from RankGPT's loop: when
``n - window_size`` is not a multiple of ``step``, RankGPT stops before the top of the list (its last window
starts above 0, so the first passages are never ranked). Here the schedule always ends with a window that
starts at 0; it is then shorter than ``window_size`` (for n=25: (5, 25), (0, 15)). PE-Rank's own loop does the
same, minus a redundant extra window.

Scores (:func:`listwise_scores`): the final rank ``r`` (1-based) of ``N`` candidates gets ``(N - r) + p``,
with ``p`` the probability the model gave the passage when it last chose it (0 for families that have none).
The integer part keeps the ranking's order (``p`` is in [0, 1]), the fraction keeps a trace of the model's
confidence, and :func:`perank.ranking.base.reorder` nudges the rare tie down so scores strictly decrease.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

from perank.ranking.base import BaseReranker, reorder
from perank.types import InputError, Request, Result


def sliding_windows(n: int, window_size: int = 20, step: int = 10) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` half-open index ranges, in the order they must be processed.

    One window ``(0, n)`` when ``n <= window_size``; no window at all for an empty list.
    """
    if window_size < 1:
        raise ValueError(f"window_size must be at least 1, got {window_size}")
    if step < 1:
        raise ValueError(f"step must be at least 1, got {step}")
    if n < 0:
        raise ValueError(f"list length must be non-negative, got {n}")
    windows: list[tuple[int, int]] = []
    end = n
    while end > 0:
        start = max(0, end - window_size)
        windows.append((start, end))
        if start == 0:
            break
        end -= step
    return windows


def listwise_scores(n: int, probs: list[float] | None = None) -> list[float]:
    """TREC scores for ranks 1..n: ``(n - r) + p_r`` (``p_r`` = 0 when no probabilities are known)."""
    probs = probs if probs is not None else [0.0] * n
    return [float(n - r) + float(p) for r, p in enumerate(probs, start=1)]


def share(total: float, weights: list[float]) -> list[float]:
    """Split a measured time over queries in proportion to the work each did (equal split if none did)."""
    mass = float(sum(weights))
    if mass <= 0:
        return [total / len(weights)] * len(weights) if weights else []
    return [total * w / mass for w in weights]


@dataclass
class QueryState:
    """One query's ranking in progress: its current order, choice probabilities and accounting.

    Families that keep more per query (PE-Rank: the passages' vectors) subclass it and return the subclass
    from :meth:`WindowReranker.start_state`.
    """

    request: Request
    order: list[int]
    prob: list[float]
    windows: list[tuple[int, int]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, request: Request, window_size: int, step: int) -> QueryState:
        n = len(request.candidates)
        return cls(
            request=request,
            order=list(range(n)),
            prob=[1.0 if n == 1 else 0.0] * n,
            windows=sliding_windows(n, window_size, step) if n > 1 else [],
            stats={
                "latency_s": 0.0,
                "tokens_processed": 0,
                "tokens_generated": 0,
                "truncated_passages": 0,
                "windows": 0,
                "windows_unchanged": 0,
            },
        )

    def window(self, k: int) -> list[int]:
        """Candidate indices of this query's k-th window, in the current order."""
        start, end = self.windows[k]
        return self.order[start:end]

    def place(self, k: int, ranked: list[int], probs: list[float] | None = None) -> None:
        """Write back the k-th window's new order (positions within the window) and the choice probabilities.

        Counts the window (``windows``) and, when the new order is the order the window came in, counts it as
        ``windows_unchanged``: a model that copies its input shows up there, whatever its family (an answer
        that could not be parsed leaves its window unchanged too, and is counted as one)."""
        start, end = self.windows[k]
        current = self.order[start:end]
        new = [current[j] for j in ranked]
        if sorted(new) != sorted(current):
            raise ValueError(f"query {self.request.query.qid}: window {k} ranking is not a permutation")
        self.order[start:end] = new
        if new == current:
            self.stats["windows_unchanged"] += 1
        if probs is not None:
            for idx, p in zip(new, probs):
                self.prob[idx] = p
        self.stats["windows"] += 1

    def result(self) -> Result:
        scores = listwise_scores(len(self.order), [self.prob[i] for i in self.order])
        return reorder(self.request, self.order, scores, self.stats)


class WindowReranker(BaseReranker):
    """A listwise reranker over sliding windows; a family implements :meth:`rank_windows` only.

    Optional hooks: :meth:`start_state` (a state subclass or extra stats), :meth:`prepare` (work done once per
    batch of queries before the first window, e.g. encoding every passage) and :meth:`inference` (a context
    held while ranking, e.g. the model's eval mode).
    """

    batch_size: int = 8
    window_size: int = 20
    step: int = 10

    def configure_windows(self, batch_size: int, window_size: int, step: int) -> None:
        """Validate and set the three numbers every window reranker takes."""
        for key, value in (("batch_size", batch_size), ("window_size", window_size), ("step", step)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{key} must be a positive integer, got {value!r}")
        self.batch_size, self.window_size, self.step = batch_size, window_size, step

    @abstractmethod
    def rank_windows(self, k: int, states: list[QueryState], scratch: dict[str, Any]) -> None:
        """Rank the k-th window of every state (one batched model call) and :meth:`QueryState.place` each.

        ``scratch`` is a dict that lives for one batch of queries, for what windows can share (PE-Rank keeps
        the KV cache of the prompt prefix there).
        """

    def start_state(self, request: Request) -> QueryState:
        return QueryState.start(request, self.window_size, self.step)

    def prepare(self, states: list[QueryState]) -> None:
        """Work done once per batch before its first window (states with at least one window)."""

    def inference(self) -> contextlib.AbstractContextManager[Any]:
        """A context held while ranking (e.g. :func:`perank.backends.runtime.eval_mode` of the model)."""
        return contextlib.nullcontext()

    def rerank_within_budget(self, requests: list[Request]) -> list[Result]:
        results: list[Result] = []
        with self.inference():
            for start in range(0, len(requests), self.batch_size):
                results.extend(self._rerank_batch(requests[start : start + self.batch_size]))
        return results

    def _rerank_batch(self, requests: list[Request]) -> list[Result]:
        states = [self.start_state(r) for r in requests]
        active = [s for s in states if s.windows]
        if active:
            self.prepare(active)
            scratch: dict[str, Any] = {}
            for k in range(max(len(s.windows) for s in active)):
                self.rank_windows(k, [s for s in active if k < len(s.windows)], scratch)
        return [s.result() for s in states]
