"""E2Rank's two losses (Alibaba-NLP/E2Rank at 478f298, ``src/modeling.py``), on L2-normalised embeddings.

- InfoNCE (``DistributedContrastiveLoss``, ``modeling.py:25-47``, applied at ``:185-193``): each plain query
  against every candidate of the batch, cosines divided by the temperature, cross-entropy towards the query's
  teacher-top candidate; the rest of its own list are hard negatives, the other lists' candidates in-batch ones.
- RankNet (``rank_net``, ``modeling.py:71-117``, applied at ``:197-216``): the cosines of a list's candidates with
  its pseudo-query, times the scale factor, over every pair the teacher orders
  (:func:`perank.training.rank_losses.ranknet_loss`, shared with ``jina-listwise``).

Lists may differ in length here (a query with fewer candidates than the window), so they travel as one flat
tensor with their lengths rather than E2Rank's ``[batch, n]`` grid; the values are the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from perank.training.rank_losses import ranknet_loss

#: RankNet is shared with ``jina-listwise`` (:mod:`perank.training.rank_losses`); kept importable here
__all__ = ["contrastive_loss", "list_scores", "ranknet_loss"]


def contrastive_loss(queries: Tensor, documents: Tensor, positives: Tensor, temperature: float) -> Tensor:
    """InfoNCE: ``queries [B, D]`` against all ``documents [N, D]``; ``positives[b]`` is the row of query b's
    positive in ``documents``."""
    logits = queries @ documents.transpose(0, 1) / temperature
    return F.cross_entropy(logits, positives)


def list_scores(pseudo_queries: Tensor, documents: Tensor, lengths: Sequence[int]) -> Tensor:
    """Each candidate's cosine with its own list's pseudo-query (``pseudo_queries [B, D]``, one per list;
    ``documents [N, D]``, the lists end to end)."""
    repeats = torch.tensor(list(lengths), device=documents.device)
    return (pseudo_queries.repeat_interleave(repeats, dim=0) * documents).sum(-1)
