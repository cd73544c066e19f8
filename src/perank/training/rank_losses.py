"""Listwise losses on scores of teacher-ranked lists, shared by the families that train on such lists.

Lists may differ in length, so they travel as one flat tensor of scores with the teacher ``positions`` of the
candidates (0 = the teacher's first) and the lists' lengths.

- :func:`ranknet_loss`: E2Rank's RankNet (Alibaba-NLP/E2Rank at 478f298, ``src/modeling.py`` ``rank_net``,
  ``:71-117``, its unweighted default): for every pair the teacher orders (i above j), the logistic loss
  ``softplus(-scale * (s_i - s_j))``, averaged over all pairs of the batch (E2Rank masks a ``[batch, n * n]``
  grid and takes one mean: the same value).
- :func:`top_cross_entropy`: the softmax cross-entropy of each list's scores (times ``scale``) towards the
  teacher's top candidate, the list's other candidates the negatives: an InfoNCE within the list.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F


def ranknet_loss(scores: Tensor, positions: Tensor, lengths: Sequence[int], scale: float) -> Tensor:
    """RankNet over lists laid end to end: ``scores`` and teacher ``positions`` of each list's candidates,
    ``lengths[i]`` candidates in list i; the mean over every teacher-ordered pair of the batch."""
    diffs = []
    for s, p in zip(scores.split(list(lengths)), positions.split(list(lengths)), strict=True):
        above = p.unsqueeze(1) < p.unsqueeze(0)  # [i, j]: the teacher puts i above j
        diffs.append((s.unsqueeze(1) - s.unsqueeze(0))[above])
    return F.softplus(-scale * torch.cat(diffs)).mean()


def top_cross_entropy(scores: Tensor, positions: Tensor, lengths: Sequence[int], scale: float) -> Tensor:
    """The mean over lists of ``-log softmax(scale * s)[top]``, ``top`` the candidate the teacher puts first."""
    losses = []
    for s, p in zip(scores.split(list(lengths)), positions.split(list(lengths)), strict=True):
        losses.append(F.cross_entropy((scale * s).unsqueeze(0), torch.argmin(p).unsqueeze(0)))
    return torch.stack(losses).mean()
