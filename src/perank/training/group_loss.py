"""The group cross-entropy every pair-group runner trains with (FlagEmbedding's reranker loss).

Scores come as ``[groups, group_size]`` with each group's positive at index 0; a teacher's scores of the same
shape add ``distill_weight`` times the KL between the tempered distributions. The teacher may have its own
temperature: a dense teacher's cosines differ by a few tenths, so at the student's temperature of 1 their
softmax is nearly flat and teaches nothing; at 0.05 (the scale such encoders are trained with) it is the
teacher's ranking. The cross-encoder and the LLM yes/no runner share it, through
:class:`perank.training.pair_group_runner.GroupTrainer`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def group_loss(
    logits: Tensor,
    teacher: Tensor | None = None,
    distill_weight: float = 0.0,
    temperature: float = 1.0,
    teacher_temperature: float | None = None,
) -> Tensor:
    """Group cross-entropy (positive at index 0) plus, with a teacher, ``distill_weight`` times
    ``KL(softmax(teacher / teacher_temperature) || softmax(logits / temperature))`` (the teacher's temperature
    is the student's when not given)."""
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    loss = F.cross_entropy(logits, target)
    if teacher is not None and distill_weight > 0:
        student = F.log_softmax(logits / temperature, dim=-1)
        t_teacher = temperature if teacher_temperature is None else teacher_temperature
        reference = F.log_softmax(teacher.to(logits.device, logits.dtype) / t_teacher, dim=-1)
        loss = loss + distill_weight * F.kl_div(student, reference, log_target=True, reduction="batchmean")
    return loss
