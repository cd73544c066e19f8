"""The Trainer of ``--family jina-listwise``: the in-list losses on the reranker's scores, small-layout saves.

Only public Trainer methods are overridden (``compute_loss``, ``save_model``; ``log`` by the shared
:class:`perank.training.logged_trainer.LoggedTrainer`), as PE-Rank's trainer does. Every save
(``output_dir`` and each ``checkpoint-*``) is the small layout the ``jina-listwise`` reranker loads
(:mod:`perank.families.jina_listwise.trained`: adapter, marker rows, projector, tokenizer, config);
``checkpoint-*`` folders also hold ``model.safetensors`` with the trainable tensors only (adapters, marker rows,
projector: a few MB), which is what the Trainer reloads when a run resumes. Each logged line carries the two
losses apart and the mean step time (``trainer_state.json`` keeps them).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from perank.families.jina_listwise.trained import save_layout
from perank.families.jina_listwise.training.losses import jina_losses
from perank.families.jina_listwise.training.model import JinaTrainingModel
from perank.training.logged_trainer import LoggedTrainer
from perank.training.saving import gathered_for_save

TRAINER_WEIGHTS = "model.safetensors"


class JinaListwiseTrainer(LoggedTrainer):
    """``loss = loss_infonce_factor * in-list InfoNCE + loss_ranknet_factor * RankNet`` (:mod:`.losses`)."""

    loss_parts = ("loss_infonce", "loss_ranknet")

    def __init__(self, *args: Any, tokenizer: Any, config: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the tokenizer with the markers and the folder's config, written with every save
        self.marker_tokenizer = tokenizer
        self.layout_config = config

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        args = self.args
        out = model(inputs["input_ids"], inputs["attention_mask"])
        scores = torch.cat([s.float() for s in out.scores])
        lengths = [int(n) for n in inputs["lengths"].tolist()]
        parts = jina_losses(scores, inputs["positions"].to(scores.device), lengths, args.temperature)
        factors = {"loss_infonce": args.loss_infonce_factor, "loss_ranknet": args.loss_ranknet_factor}
        loss = scores.new_zeros(())
        for name, part in parts.items():
            if factors[name] > 0:
                loss = loss + factors[name] * part
                self.record(name, part)
        return (loss, {"scores": scores}) if return_outputs else loss

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """The small layout, and inside Trainer checkpoints the trainable tensors for resuming."""
        from safetensors.torch import save_file

        output_dir = output_dir or self.args.output_dir
        module: JinaTrainingModel = self.model
        with gathered_for_save(self):
            if not self.args.should_save:
                return
            save_layout(
                output_dir,
                adapter=module.adapter,
                projector=module.scorer.projector,
                marker_rows=module.markers.rows,
                tokenizer=self.marker_tokenizer,
                config=self.layout_config,
            )
            if _internal_call:
                trainable = {n: p.detach().cpu().contiguous() for n, p in module.named_parameters() if p.requires_grad}
                save_file(trainable, os.path.join(output_dir, TRAINER_WEIGHTS))
