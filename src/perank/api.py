"""The public Python API: one facade over every registered family.

    from perank import Reranker, list_rerankers

    ranker = Reranker("dense")                      # any name of list_rerankers(), with its options
    result = ranker.rank("what is a flea", ["Fleas are insects.", "Paris is in France."])
    [(c.docid, c.score) for c in result.candidates]  # best first; docids are the input positions
    ranker.compute_score([("what is a flea", "Fleas are insects.")])  # pointwise families, FlagEmbedding-style

``Reranker(name, **options)`` builds the family registered as ``name`` with its constructor's keyword
arguments (``model_path=``, ``window_size=``, ``device=``, ...), exactly as ``evaluate.py --reranker NAME``
does; ``rerank`` takes the :class:`~perank.types.Request` batches the pipeline uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from perank.ranking.base import BaseReranker
from perank.ranking.registry import available_rerankers, build_reranker
from perank.types import Candidate, InputError, Query, Request, Result


def list_rerankers() -> list[str]:
    """Every name :class:`Reranker` accepts (aliases included)."""
    return available_rerankers()


class Reranker:
    """A reranker family by name: ``Reranker("pe-rank").rank(query, docs)``.

    ``family`` is the underlying :class:`~perank.ranking.base.BaseReranker` (its model, settings, ...).
    """

    def __init__(self, name: str = "pe-rank", **options: Any) -> None:
        self.family: BaseReranker = build_reranker(name, **options)

    @property
    def name(self) -> str:
        return self.family.name

    def __repr__(self) -> str:
        return f"Reranker({self.name!r})"

    def describe(self) -> dict[str, Any]:
        """The settings a run records (model, window size, ...; :class:`perank.runs.RunIdentity`)."""
        from perank.runs import RunIdentity

        return dict(RunIdentity.of(self.family).settings)

    def rank(self, query: str | Query, docs: Sequence[str | Candidate], qid: str = "q") -> Result:
        """One query's documents best first, each with its score and rank (texts get docids "0", "1", ...).

        ``query`` must be a text (or :class:`Query`) and ``docs`` a list of texts (or :class:`Candidate` objects
        with distinct docids); anything else is an :class:`InputError` naming the argument and position. A query
        longer than the family's budget is cut (``result.stats["truncated_queries"]`` is 1)."""
        return self.family.rank(query, docs, qid=qid)

    def rerank(self, requests: list[Request]) -> list[Result]:
        """A batch of requests, one result each, in the same order."""
        return self.family.rerank(requests)

    def compute_score(self, pairs: tuple[str, str] | Sequence[tuple[str, str]], normalize: bool = False) -> list[float]:
        """FlagEmbedding's ``compute_score`` on a pointwise family: a list of scores, one per pair (also for a
        single pair); ``normalize=True`` applies the sigmoid. Listwise families rank lists, not pairs, and refuse."""
        from perank.ranking.pointwise import PointwiseReranker

        if not isinstance(self.family, PointwiseReranker) or not self.family.scores_each_pair:
            raise InputError(
                f"reranker {self.name!r} ranks whole lists and has no per-pair score; use rank() or a pointwise "
                "family for compute_score()"
            )
        return self.family.compute_score(pairs, normalize=normalize)
