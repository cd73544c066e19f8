"""The data model shared by retrieval, reranking, training and evaluation.

Kept deliberately small and free of heavy imports so that every module (and every test) can use it.
A *request* is one query with its first-stage candidates; a *result* is the same candidates in a new
order with strictly decreasing scores, plus the accounting a reranker collected while producing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Query:
    """A query: its id as it appears in topics/qrels files, and its text."""

    qid: str
    text: str


@dataclass
class Candidate:
    """One retrieved passage.

    ``rank`` is the first-stage rank (1-based) and ``score`` the score of whichever stage produced this
    object; rerankers return new candidates carrying their own scores.
    """

    docid: str
    text: str
    score: float = 0.0
    rank: int = 0


@dataclass
class Request:
    """A query and its candidates in first-stage order."""

    query: Query
    candidates: list[Candidate]


@dataclass
class Result:
    """A reranked request.

    ``candidates`` are in the new order, and their scores strictly decrease. ``stats`` holds per-query
    accounting (latency, tokens processed/generated, parser repairs, truncations) that the pipeline
    aggregates into the metrics JSON.
    """

    query: Query
    candidates: list[Candidate]
    stats: dict[str, Any] = field(default_factory=dict)

    def top_k(self, k: int) -> list[Candidate]:
        """The ``k`` best candidates (fewer when the list is shorter)."""
        return self.candidates[:k]


class InputError(ValueError):
    """Bad user input (a file, a line, a name); the message always says which one."""
