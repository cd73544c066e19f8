"""A Trainer that saves PE-Rank checkpoints and gives the projector its own learning rate.

Only public Trainer methods are overridden (``create_optimizer``, ``save_model``, ``log``). Every save
writes a folder :meth:`PERankModel.from_pretrained` reads (config, projector, tokenizer, and the LLM as a
LoRA adapter, full weights, or nothing when it was frozen), plus ``projector.bin`` under the original's key
names (``model.projector.0.weight`` ...) for ``--pretrain_mlp_adapter``. Trainer checkpoints
(``checkpoint-*``) additionally hold ``model.safetensors`` with the *trainable* tensors only, which is what
``Trainer`` reloads on ``--resume_from_checkpoint`` (a few MB instead of the whole LLM).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from transformers import Trainer

from perank.families.pe_rank.training.model import PERankTrainingModel
from perank.training.saving import gathered_for_save

TRAINER_WEIGHTS = "model.safetensors"


def original_projector_state(model: PERankTrainingModel) -> dict[str, torch.Tensor]:
    """The projector under the original's names (``model.projector.{i}.weight``)."""
    return {
        f"model.projector.{k}": v.detach().cpu().contiguous() for k, v in model.perank.projector.state_dict().items()
    }


class PERankTrainer(Trainer):
    """Trainer for :class:`PERankTrainingModel`."""

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        """AdamW-family optimizer (per ``--optim``); the projector and the relevance direction have their own learning
        rates (``--projector_lr``, ``--relevance_lr``)."""
        if self.optimizer is not None:
            return self.optimizer
        module: PERankTrainingModel = self.model
        # three learning rates: the LLM's (--learning_rate), the projector's and the relevance direction's
        proj_ids = {id(p) for p in module.perank.projector.parameters()}
        relevance = module.perank.relevance
        proj_lr = self.args.projector_lr or self.args.learning_rate
        lrs = {"llm": self.args.learning_rate, "projector": proj_lr, "relevance": self.args.relevance_lr or proj_lr}
        groups: dict[tuple[str, bool], list[torch.nn.Parameter]] = {}
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            decay = p.ndim >= 2 and "norm" not in name.lower()
            part = "relevance" if p is relevance else "projector" if id(p) in proj_ids else "llm"
            groups.setdefault((part, decay), []).append(p)
        param_groups = [
            {"params": params, "weight_decay": self.args.weight_decay if decay else 0.0, "lr": lrs[part]}
            for (part, decay), params in groups.items()
        ]
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, module)
        optimizer_kwargs.pop("lr", None)
        self.optimizer = optimizer_cls(param_groups, lr=self.args.learning_rate, **optimizer_kwargs)
        return self.optimizer

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Add the last step's loss components (ListMLE per prompt, KL) to the log line."""
        module = self.model
        if "loss" in logs and isinstance(module, PERankTrainingModel):
            logs.update({k: round(v, 4) for k, v in module.last_losses.items()})
        super().log(logs, *args, **kwargs)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Write a perank checkpoint (and, inside Trainer checkpoints, the trainable tensors for resuming)."""
        from safetensors.torch import save_file

        output_dir = output_dir or self.args.output_dir
        module: PERankTrainingModel = self.model
        with gathered_for_save(self):
            if not self.args.should_save:
                return
            os.makedirs(output_dir, exist_ok=True)
            llm_trained = any(p.requires_grad for p in module.perank.llm.parameters())
            module.perank.save_pretrained(output_dir, save_llm=llm_trained)
            torch.save(original_projector_state(module), os.path.join(output_dir, "projector.bin"))
            if _internal_call:
                trainable = {n: p.detach().cpu().contiguous() for n, p in module.named_parameters() if p.requires_grad}
                save_file(trainable, os.path.join(output_dir, TRAINER_WEIGHTS))
            torch.save(self.args, os.path.join(output_dir, "training_args.bin"))
