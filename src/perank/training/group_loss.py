"""The group cross-entropy every pair-group runner trains with (FlagEmbedding's reranker loss).

Scores come as ``[groups, group_size]`` with each group's positive at index 0; a teacher's scores of the same
shape add ``distill_weight`` times the KL between the tempered distributions. The teacher may have its own
temperature: a dense teacher's cosines differ by a few tenths, so at the student's temperature of 1 their
softmax is nearly flat and teaches nothing; at 0.05 (the scale such encoders are trained with) it is the
teacher's ranking. The cross-encoder and the LLM yes/no runner share it, through
:class:`perank.training.pair_group_runner.GroupTrainer`.

A model with several score heads per pair (the layerwise reranker: one head per layer from ``start_layer`` on)
trains every head on it, as FlagEmbedding's layerwise fine-tuning does (:func:`layered_group_loss`): the sum over
heads of the group loss, and, when no teacher is distilled, each earlier head distilled from the last one.
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


def layered_group_loss(
    logits: Tensor,
    teacher: Tensor | None = None,
    distill_weight: float = 0.0,
    temperature: float = 1.0,
    teacher_temperature: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """FlagEmbedding's layerwise reranker loss on ``logits`` ``[groups, group_size, heads]`` (the last head the
    deepest layer's): ``(loss, parts)``.

    The loss is the sum over heads of :func:`group_loss` (with the teacher, when one is distilled); without a
    teacher, each earlier head also learns the last head's distribution:
    ``sum_k KL(softmax(last).detach() || softmax(head_k))`` at temperature 1 (FlagEmbedding's soft cross-entropy
    to the detached last layer, which has the same gradient). ``parts``: ``loss_last`` (the last head's group
    loss, comparable with a one-head model's loss) and, when it is added, ``loss_self_distill``."""
    per_head = [
        group_loss(logits[..., k], teacher, distill_weight, temperature, teacher_temperature)
        for k in range(logits.shape[-1])
    ]
    loss = torch.stack(per_head).sum()
    parts = {"loss_last": per_head[-1]}
    if (teacher is None or distill_weight <= 0) and logits.shape[-1] > 1:
        target = F.log_softmax(logits[..., -1].detach(), dim=-1)
        distill = torch.stack(
            [
                F.kl_div(F.log_softmax(logits[..., k], dim=-1), target, log_target=True, reduction="batchmean")
                for k in range(logits.shape[-1] - 1)
            ]
        ).sum()
        loss = loss + distill
        parts["loss_self_distill"] = distill
    return loss, parts
