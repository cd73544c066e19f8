"""The group cross-entropy every pair-group runner trains with (FlagEmbedding's reranker loss).

Scores come as ``[groups, group_size]`` with each group's positive at index 0; a teacher's scores of the same
shape add ``distill_weight`` times the KL between the tempered distributions. The cross-encoder and the LLM
yes/no runner share it, through :class:`perank.training.pair_group_runner.GroupTrainer`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def group_loss(
    logits: Tensor, teacher: Tensor | None = None, distill_weight: float = 0.0, temperature: float = 1.0
) -> Tensor:
    """Group cross-entropy (positive at index 0) plus, with a teacher, ``distill_weight`` times the KL."""
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    loss = F.cross_entropy(logits, target)
    if teacher is not None and distill_weight > 0:
        student = F.log_softmax(logits / temperature, dim=-1)
        reference = F.log_softmax(teacher.to(logits.device, logits.dtype) / temperature, dim=-1)
        loss = loss + distill_weight * F.kl_div(student, reference, log_target=True, reduction="batchmean")
    return loss
