"""The ColBERT training loss: group and in-batch negatives, cross-entropy with temperature, optional distillation.

As FlagEmbedding's bge-m3 fine-tuning (``EncoderOnlyEmbedderM3Model`` with its ColBERT score):

- each query comes with a group ``[positive, G - 1 negatives]``; the scores are the *normalised* MaxSim
  (:func:`~perank.families.colbert.scoring.maxsim`, the ranking score in [-1, 1], divided by the query's token
  count) divided by the temperature (0.02 by default, REFERENCE-families §4), not open-retrievals' undivided sums;
- with in-batch negatives (the default) query b is scored against all B * G passages of the batch and the target
  is its own positive (index b * G); without, only against its own group (target 0);
- with teacher scores (``pos_scores`` / ``neg_scores`` in the data): ``kl_div`` adds
  ``-mean(sum(softmax(teacher) * log_softmax(group scores)))`` to the cross-entropy; ``m3_kd_loss`` replaces it
  by FlagEmbedding's teacher-weighted cross-entropy over each group member in turn (earlier ones masked out).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perank.families.colbert.model import ColbertModel
from perank.families.colbert.scoring import maxsim

KD_LOSS_TYPES = ("kl_div", "m3_kd_loss")


def group_scores(scores: Tensor, group_size: int) -> Tensor:
    """``[B, G]``: each query's scores against its own group, out of the ``[B, B * G]`` in-batch matrix."""
    batch = scores.shape[0]
    return scores.view(batch, batch, group_size)[torch.arange(batch), torch.arange(batch)]


def m3_kd_loss(teacher: Tensor, scores: Tensor, targets: Tensor, group_size: int) -> Tensor:
    """FlagEmbedding's ``m3_kd_loss``: for each group member i, cross-entropy towards it weighted by the teacher's
    probability of i, with the members already visited masked out (``targets`` are the positives' columns)."""
    loss = scores.new_zeros(())
    mask = torch.zeros_like(scores)
    for i in range(group_size):
        target = targets + i
        per_query = F.cross_entropy(scores + mask, target, reduction="none")
        loss = loss + torch.mean(teacher[:, i] * per_query)
        mask = torch.scatter(mask, -1, target.unsqueeze(-1), torch.finfo(scores.dtype).min)
    return loss


class ColbertTrainingModel(nn.Module):
    """Wraps a :class:`ColbertModel`; ``forward(**batch)`` returns ``{"loss", "scores"}`` for the Trainer."""

    def __init__(
        self,
        colbert: ColbertModel,
        temperature: float = 0.02,
        in_batch_negatives: bool = True,
        kd_loss_type: str = "kl_div",
        freeze_encoder: bool = False,
    ) -> None:
        super().__init__()
        if kd_loss_type not in KD_LOSS_TYPES:
            raise ValueError(f"kd_loss_type {kd_loss_type!r}: choose one of {', '.join(KD_LOSS_TYPES)}")
        self.colbert = colbert
        self.temperature = float(temperature)
        self.in_batch_negatives = bool(in_batch_negatives)
        self.kd_loss_type = kd_loss_type
        self.freeze_encoder = bool(freeze_encoder)
        colbert.encoder.requires_grad_(not self.freeze_encoder)
        colbert.colbert_linear.requires_grad_(True)

    def train(self, mode: bool = True) -> ColbertTrainingModel:
        """Train mode, except that a frozen encoder stays in eval mode (no dropout on features it cannot adapt)."""
        super().train(mode)
        if self.freeze_encoder:
            self.colbert.encoder.eval()
        return self

    def gradient_checkpointing_enable(self, **kwargs: Any) -> None:
        """What ``--gradient_checkpointing`` calls: checkpoint the encoder's layers."""
        self.colbert.encoder.gradient_checkpointing_enable(**kwargs)

    def vectors(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Token vectors with gradient through the projection (and the encoder unless it is frozen)."""
        if self.freeze_encoder:
            with torch.no_grad():
                hidden = self.colbert.hidden_states(input_ids, attention_mask)
        else:
            hidden = self.colbert.hidden_states(input_ids, attention_mask)
        return self.colbert.project(hidden, attention_mask)

    def forward(
        self,
        query_input_ids: Tensor,
        query_attention_mask: Tensor,
        passage_input_ids: Tensor,
        passage_attention_mask: Tensor,
        teacher_scores: Tensor | None = None,
    ) -> dict[str, Tensor]:
        q, q_mask = self.vectors(query_input_ids, query_attention_mask)
        p, p_mask = self.vectors(passage_input_ids, passage_attention_mask)
        batch = q.shape[0]
        group_size = p.shape[0] // batch
        if self.in_batch_negatives:
            scores = maxsim(q, q_mask, p, p_mask) / self.temperature  # [B, B*G]
            local = group_scores(scores, group_size)
            targets = torch.arange(batch, device=scores.device) * group_size
        else:
            local = self._local_scores(q, q_mask, p, p_mask, group_size) / self.temperature  # [B, G]
            scores = local
            targets = torch.zeros(batch, dtype=torch.long, device=scores.device)
        if teacher_scores is None:
            loss = F.cross_entropy(scores, targets)
        else:
            teacher = torch.softmax(teacher_scores.float().view(batch, group_size), dim=-1)
            if self.kd_loss_type == "kl_div":
                distill = -torch.mean(torch.sum(torch.log_softmax(local, dim=-1) * teacher, dim=-1))
                loss = distill + F.cross_entropy(scores, targets)
            else:
                loss = m3_kd_loss(teacher, scores, targets, group_size)
        return {"loss": loss, "scores": local.detach()}

    @staticmethod
    def _local_scores(q: Tensor, q_mask: Tensor, p: Tensor, p_mask: Tensor, group_size: int) -> Tensor:
        """``[B, G]`` without scoring the other queries' passages (no in-batch negatives)."""
        rows = []
        for b in range(q.shape[0]):
            group = slice(b * group_size, (b + 1) * group_size)
            rows.append(maxsim(q[b : b + 1], q_mask[b : b + 1], p[group], p_mask[group]))
        return torch.cat(rows, dim=0)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Also accept a ColBERT folder's encoder weights under their own names (no ``colbert.encoder.`` prefix):
        that is the ``model.safetensors`` the Trainer reloads from a ``checkpoint-*`` folder when resuming (the
        projection comes from its ``colbert_linear.pt``, read when the model is built from that folder)."""
        own = self.state_dict()
        if state_dict and not any(key in own for key in state_dict):
            return self.colbert.encoder.load_state_dict(state_dict, strict=strict, assign=assign)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
