"""The Trainer of ``--family e2rank``: E2Rank's two losses from one LoRA-wrapped embedder, adapter-folder saves.

The model the Trainer holds is a peft LoRA wrapper around the sentence-transformers embedder (only the adapters
train); it embeds a batch of tokenised texts as the embedder does (``model(features)["sentence_embedding"]``,
L2-normalised as at inference). Every save (``output_dir`` and each ``checkpoint-*``) is the Trainer's own for a
peft model, the adapter and its config naming the base, plus ``e2rank_config.json`` with the text settings: a
folder the ``e2rank`` reranker loads as ``model_path``, and one a resumed run reloads the adapter from.
Each logged line carries the two losses apart and the mean step time (``trainer_state.json`` keeps them), as
the shared :class:`perank.training.logged_trainer.LoggedTrainer` writes them.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.nn import functional as F

from perank.families.e2rank.settings import write_settings
from perank.families.e2rank.training.losses import contrastive_loss, list_scores, ranknet_loss
from perank.training.logged_trainer import LoggedTrainer


def embed(model: Any, features: dict[str, Tensor]) -> Tensor:
    """L2-normalised sentence embeddings of tokenised texts (with gradient through the adapters)."""
    return F.normalize(model(features)["sentence_embedding"].float(), dim=-1)


class E2RankTrainer(LoggedTrainer):
    """``loss = loss_embed_factor * InfoNCE + loss_ranknet_factor * RankNet`` (E2Rank's ``JointTrainingModel``)."""

    loss_parts = ("loss_embed", "loss_ranknet")

    def __init__(self, *args: Any, settings: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the text settings written beside every save (:mod:`perank.families.e2rank.settings`)
        self.settings = settings

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        args = self.args
        lengths = [int(n) for n in inputs["lengths"].tolist()]
        documents = embed(model, inputs["documents"])
        loss = documents.new_zeros(())
        outputs: dict[str, Tensor] = {}
        if args.loss_embed_factor > 0:
            queries = embed(model, inputs["queries"])
            part = contrastive_loss(queries, documents, inputs["positives"], args.temperature)
            loss = loss + args.loss_embed_factor * part
            self.record("loss_embed", part)
        if args.loss_ranknet_factor > 0:
            scores = list_scores(embed(model, inputs["pseudo_queries"]), documents, lengths)
            part = ranknet_loss(scores, inputs["positions"], lengths, args.ranknet_scale_factor)
            loss = loss + args.loss_ranknet_factor * part
            self.record("loss_ranknet", part)
            outputs["scores"] = scores
        return (loss, outputs) if return_outputs else loss

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """The Trainer's adapter save, and the text settings beside it."""
        super().save_model(output_dir, _internal_call=_internal_call)
        if self.args.should_save:
            write_settings(output_dir or self.args.output_dir, self.settings)
