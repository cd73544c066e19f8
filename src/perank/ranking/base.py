"""The reranker interface every family implements, and :func:`reorder`, the one way to build a result.

A family takes a *batch* of requests so that it can batch across queries; the pipeline decides the batch
size and handles resuming, writing and scoring. Most families do not subclass :class:`BaseReranker`
directly but one of the strategies beside it: :class:`perank.ranking.pointwise.PointwiseReranker` (score
each query-passage pair) or :class:`perank.ranking.window.WindowReranker` (rank sliding windows).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from perank.types import Candidate, InputError, Query, Request, Result


class BaseReranker(ABC):
    """Reorders the candidates of each request; returned scores must strictly decrease."""

    #: the registry name; set by :func:`perank.ranking.registry.register`
    name: str = ""
    #: the options this instance was built with by :func:`perank.ranking.registry.build_reranker` (the run's
    #: file name carries those that change the ranking; see :func:`perank.runs.run_label`)
    options: Mapping[str, Any] = MappingProxyType({})
    #: ``describe()`` keys that do not change the ranking (speed, memory, caching); every other key is part of a
    #: run's identity, so an old run is never rescored for a command with other settings
    volatile_settings: frozenset[str] = frozenset(
        {
            "batch_size",
            "encode_batch_size",
            "reuse_prefix",
            "embedding_cache",
            "device",
            "run_label",
            "trust_remote_code",
        }
    )

    @abstractmethod
    def rerank(self, requests: list[Request]) -> list[Result]:
        """Rerank a batch of requests, one result per request, in the same order."""

    def describe(self) -> dict[str, Any]:
        """Settings worth recording beside a run (model ids, window size, ...)."""
        return {"reranker": self.name}

    def rank(self, query: str | Query, docs: Sequence[str | Candidate], qid: str = "q") -> Result:
        """Rank one query's documents: ``docs`` are texts (ids ``"0"``, ``"1"``, ... in input order) or
        :class:`Candidate` objects; the result holds them best first, each with its score and new rank."""
        return self.rerank([make_request(query, docs, qid)])[0]


def make_request(query: str | Query, docs: Sequence[str | Candidate], qid: str = "q") -> Request:
    """A :class:`Request` from a query text (or :class:`Query`) and texts (or :class:`Candidate` objects)."""
    if isinstance(docs, str):
        raise InputError("docs must be a list of texts, not one string")
    q = query if isinstance(query, Query) else Query(qid=qid, text=str(query))
    candidates: list[Candidate] = []
    for i, doc in enumerate(docs):
        if isinstance(doc, Candidate):
            candidates.append(doc)
        elif isinstance(doc, str):
            candidates.append(Candidate(docid=str(i), text=doc, score=0.0, rank=i + 1))
        else:
            raise InputError(f"docs[{i}] is a {type(doc).__name__}; expected a text or a Candidate")
    return Request(query=q, candidates=candidates)


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
    bad = [s for s in scores if not math.isfinite(s)]
    if bad:  # never written: a NaN would sort anywhere in trec_eval
        raise ValueError(f"query {request.query.qid}: the reranker produced a non-finite score ({bad[0]})")
    from perank.io import strictly_decreasing

    fixed = strictly_decreasing(list(scores))
    cands = [
        Candidate(docid=request.candidates[i].docid, text=request.candidates[i].text, score=s, rank=r)
        for r, (i, s) in enumerate(zip(order, fixed), start=1)
    ]
    return Result(query=request.query, candidates=cands, stats=dict(stats or {}))
