"""Circle Loss (Sun et al., arXiv 2002.10857), the loss ListConRanker is trained with, on one list's scores.

For similarity scores s (here the model's sigmoid scores in (0, 1)) of positives s_p and negatives s_n::

    L = log(1 + sum_n exp(gamma * a_n * (s_n - m)) * sum_p exp(-gamma * a_p * (s_p - 1 + m)))
    a_p = [1 + m - s_p]_+     a_n = [s_n + m]_+

The weights a_p, a_n are not differentiated through (as in the paper's reference code): they only say how far
each score is from its optimum (1 + m for positives, -m for negatives), so pairs far from it weigh more.
Computed as ``softplus(logsumexp(.) + logsumexp(.))``, which is stable for any gamma.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def circle_loss(scores: Tensor, targets: Tensor, gamma: float, margin: float) -> Tensor:
    """Circle Loss of one list: ``scores`` and ``targets`` (1 = positive, 0 = negative) of its passages.

    A list without a positive or without a negative has no pair to compare: its loss is 0 (with a gradient
    path, so it can be summed with the others)."""
    positive = targets > 0.5
    s_p, s_n = scores[positive], scores[~positive]
    if s_p.numel() == 0 or s_n.numel() == 0:
        return scores.sum() * 0.0
    alpha_p = (1.0 + margin - s_p).detach().clamp_min(0.0)
    alpha_n = (s_n + margin).detach().clamp_min(0.0)
    logit_p = -gamma * alpha_p * (s_p - (1.0 - margin))
    logit_n = gamma * alpha_n * (s_n - margin)
    return F.softplus(torch.logsumexp(logit_n, dim=0) + torch.logsumexp(logit_p, dim=0))


def batch_circle_loss(scores: Tensor, targets: Tensor, lengths: list[int], gamma: float, margin: float) -> Tensor:
    """The mean Circle Loss of a batch of lists (``scores``/``targets`` of all passages, list after list;
    ``lengths[i]`` = passages of list i)."""
    losses = [
        circle_loss(s, t, gamma, margin) for s, t in zip(scores.split(lengths), targets.split(lengths), strict=True)
    ]
    return torch.stack(losses).mean()
