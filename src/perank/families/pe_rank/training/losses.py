"""Losses for PE-Rank stage 2: ListMLE over the dynamic passage vocabulary, and the KL consistency term.

At rank step k the model scores every passage of the window (``h_k . P(e_i)``); the passages already
ranked at steps < k are masked out, and the loss is the cross-entropy of the passage the teacher put at
rank k. This is ListMLE (Xia et al. 2008) written as a sequence of softmaxes over a shrinking vocabulary.

Masked entries are set to a large *finite* negative value rather than ``-inf`` so that the KL term (which
multiplies ``exp(target) * (target - input)``) stays finite: with ``-inf`` it would produce ``0 * nan``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

WEIGHTINGS = ("uniform", "top")
_MASK_VALUE = -1e9


def step_logits(hidden: Tensor, passages: Tensor, ranking: Tensor) -> Tensor:
    """Masked score matrix ``[n, n]``: row k scores all passages, those ranked before step k masked.

    ``hidden`` is ``[n, d]`` (the state that predicts rank k in row k), ``passages`` ``[n, d]`` (projected
    embeddings in input order), ``ranking`` ``[n]`` (ranking[k] = input index at rank k). Computed in fp32.
    """
    logits = hidden.float() @ passages.float().T
    n = logits.shape[0]
    # already[k, i] is True when passage i was ranked at a step < k
    pos_of = torch.empty_like(ranking)
    pos_of[ranking] = torch.arange(n, device=ranking.device)
    steps = torch.arange(n, device=ranking.device)
    already = pos_of.unsqueeze(0) < steps.unsqueeze(1)
    return logits.masked_fill(already, _MASK_VALUE)


def step_weights(n: int, weighting: str, device: torch.device | None = None) -> Tensor:
    """Per-step weights: ``uniform`` = 1/n each (a mean), ``top`` = 1, 1/2, 1/4, ... (summed, no normalising)."""
    if weighting == "uniform":
        return torch.full((n,), 1.0 / n, device=device)
    if weighting == "top":
        return 0.5 ** torch.arange(n, dtype=torch.float32, device=device)
    raise ValueError(f"unknown ListMLE weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")


def listmle_loss(masked_logits: Tensor, ranking: Tensor, weighting: str = "uniform") -> Tensor:
    """ListMLE of one window from its masked step logits (see :func:`step_logits`)."""
    n = masked_logits.shape[0]
    per_step = F.cross_entropy(masked_logits.float(), ranking, reduction="none")
    return (per_step * step_weights(n, weighting, masked_logits.device)).sum()


def kl_loss(logits_wo: Tensor, logits_w: Tensor) -> Tensor:
    """The original's consistency term: ``kl_div(log_softmax(wo), log_softmax(w), log_target=True, batchmean)``.

    That is KL(p_with_content || p_without_content) averaged over rank steps; the target (with-content
    distribution) is NOT detached, as in the original, so both prompts move towards each other.
    """
    return F.kl_div(
        F.log_softmax(logits_wo.float(), dim=-1),
        F.log_softmax(logits_w.float(), dim=-1),
        log_target=True,
        reduction="batchmean",
    )
