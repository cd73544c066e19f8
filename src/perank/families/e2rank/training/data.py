"""E2Rank's training batches from ``perank build-rank-data`` rows (the teacher lists PE-Rank's small model trains
on), read, checked and drawn into slates by :mod:`perank.training.ranked_lists` (shared with ``jina-listwise``).

Per item the losses score a slate: every candidate (E2Rank's setting), or with ``--slate_size`` the teacher's top
one and a random draw of the others. The pseudo-query always shows the window's first ``k`` candidates, as at
inference. The collator builds the texts through :class:`perank.families.e2rank.texts.E2RankTexts`, the
reranker's own.
"""

from __future__ import annotations

from typing import Any

import torch

from perank.families.e2rank.texts import E2RankTexts
from perank.training.ranked_lists import RankedList, RankedListDataset, read_ranked_lists, refuse_held_out

#: the list-reading names, kept importable here (they lived in this module before they were shared)
__all__ = ["RankedList", "RankedListCollator", "RankedListDataset", "read_ranked_lists", "refuse_held_out"]


def _prompt(model: Any, kind: str | None) -> str | None:
    """The prompt sentence-transformers adds for ``encode_query`` (``kind="query"``), ``encode_document``
    (``"document"``) or ``encode`` (None): the model's prompt of that name, else its default prompt."""
    if kind is not None and kind in model.prompts:
        return model.prompts[kind]
    return model.prompts.get(model.default_prompt_name) if model.default_prompt_name else None


class RankedListCollator:
    """Items -> tokenised plain queries, pseudo-queries and slate candidates, with the list structure.

    The texts are the reranker's (:class:`E2RankTexts`) and are tokenised by the embedder's own preprocessing
    with the prompt its ``encode_*`` call would add, so training embeds exactly what inference embeds.
    """

    def __init__(self, embedder: Any, texts: E2RankTexts, pseudo_queries: bool = True) -> None:
        self.embedder = embedder
        self.texts = texts
        self.pseudo_queries = pseudo_queries  # off when RankNet is (its factor 0): nothing reads them
        self.query_prompt = _prompt(embedder, "query" if texts.uses_query_prompt else None)
        self.document_prompt = _prompt(embedder, "document")
        self.text_prompt = _prompt(embedder, None)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        documents: list[str] = []
        positives: list[int] = []
        positions: list[int] = []
        for item in items:
            slate = item["slate"]
            positives.append(len(documents) + item["positions"].index(min(item["positions"])))
            documents += self.texts.documents([item["window"][j] for j in slate])
            positions += item["positions"]
        batch = {
            "queries": self.embedder.preprocess(
                [self.texts.plain(item["query"]) for item in items], prompt=self.query_prompt
            ),
            "documents": self.embedder.preprocess(documents, prompt=self.document_prompt),
            "positives": torch.tensor(positives, dtype=torch.long),
            "positions": torch.tensor(positions, dtype=torch.long),
            "lengths": torch.tensor([len(item["slate"]) for item in items], dtype=torch.long),
        }
        if self.pseudo_queries:
            pseudo = [self.texts.listwise(item["query"], item["window"]) for item in items]
            batch["pseudo_queries"] = self.embedder.preprocess(pseudo, prompt=self.text_prompt)
        return batch
