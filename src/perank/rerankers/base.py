"""The reranker interface and the registry that ``evaluate.py --reranker NAME`` resolves against.

Every family (first-stage identity, dense bi-encoder, PE-Rank, listwise text generation, ...) implements
:class:`Reranker`. Rerankers take a *batch* of requests so that implementations can batch across queries;
the pipeline decides the batch size and handles resuming, writing and scoring.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from perank.types import Candidate, InputError, Request, Result


class Reranker(ABC):
    """Reorders the candidates of each request; returned scores must strictly decrease."""

    #: the registry name; set by :func:`register`
    name: str = ""

    @abstractmethod
    def rerank(self, requests: list[Request]) -> list[Result]:
        """Rerank a batch of requests, one result per request, in the same order."""

    def describe(self) -> dict[str, Any]:
        """Settings worth recording beside a run (model ids, window size, ...)."""
        return {"reranker": self.name}


_REGISTRY: dict[str, Callable[..., Reranker]] = {}


def register(*names: str) -> Callable[[type[Reranker]], type[Reranker]]:
    """Class decorator: make a reranker available under one or more names (aliases)."""

    def wrap(cls: type[Reranker]) -> type[Reranker]:
        cls.name = names[0]
        for n in names:
            _REGISTRY[n] = cls
        return cls

    return wrap


def available_rerankers() -> list[str]:
    """Names accepted by :func:`build_reranker` (importing the families registers them)."""
    import perank.rerankers  # noqa: F401  (registers the built-in families)

    return sorted(_REGISTRY)


def get_reranker_class(name: str) -> Callable[..., Reranker] | None:
    """The factory registered under ``name`` (None when unknown), e.g. to inspect its keyword arguments."""
    available_rerankers()
    return _REGISTRY.get(name)


def build_reranker(name: str, **kwargs: Any) -> Reranker:
    """Instantiate a registered reranker; an unknown name lists the known ones."""
    known = available_rerankers()
    if name not in _REGISTRY:
        raise InputError(f"unknown reranker {name!r}; known: {', '.join(known)}")
    return _REGISTRY[name](**kwargs)


def reorder(request: Request, order: list[int], scores: list[float], stats: dict[str, Any] | None = None) -> Result:
    """Build a result from a permutation of the request's candidates and one score per position.

    ``order[k]`` is the index (into ``request.candidates``) of the candidate ranked k-th. Checks that the
    order is a permutation, so a bug in a ranker cannot silently drop or duplicate a passage.
    """
    n = len(request.candidates)
    if sorted(order) != list(range(n)):
        raise ValueError(f"query {request.query.qid}: ranking is not a permutation of {n} candidates")
    if len(scores) != n:
        raise ValueError(f"query {request.query.qid}: {len(scores)} scores for {n} candidates")
    from perank.io import strictly_decreasing

    fixed = strictly_decreasing(list(scores))
    cands = [
        Candidate(docid=request.candidates[i].docid, text=request.candidates[i].text, score=s, rank=r)
        for r, (i, s) in enumerate(zip(order, fixed), start=1)
    ]
    return Result(query=request.query, candidates=cands, stats=dict(stats or {}))
