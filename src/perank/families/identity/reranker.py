"""The identity reranker: keeps the first-stage order (the BM25 baseline row of every table)."""

from __future__ import annotations

from perank.ranking.base import BaseReranker, reorder
from perank.types import Request, Result


class IdentityReranker(BaseReranker):
    """Returns candidates in their input order.

    Its scores are the first stage's when they decrease along the list, so that its run is the first stage's run,
    ties and all (BM25's 0.5058 on DL19). When they do not (the input was permuted: ``--shuffle-input``), it scores
    by position, ``n - i``: nudging increasing scores down by one float step would keep the order in the file but
    not for trec_eval, which holds scores as 32-bit floats and would score them as one tie, broken by docid.
    """

    name = "identity"

    def describe(self) -> dict[str, object]:
        return {"reranker": self.name, "model": None}  # no model: the first stage's order is the ranking

    def rerank_within_budget(self, requests: list[Request]) -> list[Result]:
        return [reorder(r, list(range(len(r.candidates))), self.scores(r), {"tokens_processed": 0}) for r in requests]

    @staticmethod
    def scores(request: Request) -> list[float]:
        """The candidates' own scores when they do not increase anywhere along the list, else ``n - position``."""
        scores = [c.score for c in request.candidates]
        if any(later > earlier for earlier, later in zip(scores, scores[1:])):
            return [float(len(scores) - i) for i in range(len(scores))]
        return scores
