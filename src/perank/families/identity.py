"""The identity reranker: keeps the first-stage order (the BM25 baseline row of every table)."""

from __future__ import annotations

from perank.ranking.base import BaseReranker, reorder
from perank.ranking.registry import register
from perank.types import Request, Result


@register("identity")
class IdentityReranker(BaseReranker):
    """Returns candidates in their input order, with their first-stage scores made strictly decreasing."""

    def describe(self) -> dict[str, object]:
        return {"reranker": self.name, "model": None}  # no model: the first stage's order is the ranking

    def rerank_within_budget(self, requests: list[Request]) -> list[Result]:
        return [
            reorder(r, list(range(len(r.candidates))), [c.score for c in r.candidates], {"tokens_processed": 0})
            for r in requests
        ]
