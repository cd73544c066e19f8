"""The loss module the Trainer trains, and the Trainer that saves ListConRanker folders.

:class:`ListConRankerTrainingModel` turns a batch of lists (texts, list lengths, relevance targets) into the
mean Circle Loss of its lists. With ``freeze_embedder`` (stage 1) the embedder is a fixed feature extractor:
it runs in eval mode (no dropout) without gradient, so its pooled output for a text never changes and is
kept in memory (``cache_embeddings``): after the first epoch only the small list transformer runs.

:class:`ListConRankerTrainer` writes every save (``output_dir`` and each ``checkpoint-*``) as a ListConRanker
folder that the ``listconranker`` reranker and a later stage read (:meth:`ListConRankerModel.save_pretrained`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from transformers import Trainer

from perank.families.listconranker.model import ListConRankerModel
from perank.families.listconranker.training.losses import batch_circle_loss
from perank.training.saving import gathered_for_save


class ListConRankerTrainingModel(nn.Module):
    """Circle Loss around a :class:`ListConRankerModel` (attribute ``model``)."""

    # read by Trainer when it reloads a checkpoint's weights
    _keys_to_ignore_on_save: list[str] | None = None

    def __init__(
        self,
        model: ListConRankerModel,
        freeze_embedder: bool,
        gamma: float,
        margin: float,
        cache_embeddings: bool = True,
    ) -> None:
        super().__init__()
        self.model = model
        # the embedder's config: DeepSpeed's "auto" bucket sizes are derived from its hidden_size
        self.config = model.embedder.config
        self.freeze_embedder = freeze_embedder
        self.gamma = gamma
        self.margin = margin
        self.cache_embeddings = cache_embeddings and freeze_embedder
        self._cache: dict[str, Tensor] = {}
        self.last_stats: dict[str, float] = {}
        model.requires_grad_(True)
        model.embedder.requires_grad_(not freeze_embedder)

    def train(self, mode: bool = True) -> ListConRankerTrainingModel:
        """Training mode for the head; a frozen embedder stays in eval mode (no dropout: exact, cacheable)."""
        super().train(mode)
        if self.freeze_embedder:
            self.model.embedder.eval()
        return self

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: Any = None) -> None:
        """Checkpoint the embedder's layers (the list transformer is small)."""
        kwargs = gradient_checkpointing_kwargs or {"use_reentrant": False}
        self.model.embedder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Also accepts the embedder's own weights file, which is what a resumed Trainer reads from a
        checkpoint folder (``model.safetensors`` there is the embedder's; the head, in the folder's ``.pt``
        files, was already loaded when the model was built from the checkpoint: see the runner)."""
        if state_dict and not set(state_dict) & set(self.state_dict()):
            return self.model.embedder.load_state_dict(state_dict, strict=strict, assign=assign)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def pooled(self, texts: list[str]) -> Tensor:
        """Pooled embeddings of ``texts``: with gradient, or from the frozen embedder (cached by text)."""
        model = self.model
        if not self.freeze_embedder:
            return model.embed(model.tokenize(texts, model.config.max_length))
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        fresh: dict[str, Tensor] = {}
        if missing:
            with torch.no_grad():
                vectors = model.embed(model.tokenize(missing, model.config.max_length)).detach()
            fresh = dict(zip(missing, vectors))
            if self.cache_embeddings:
                self._cache.update(fresh)
        return torch.stack([self._cache.get(t, fresh.get(t)) for t in texts])

    def forward(self, texts: list[str], lengths: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """``{"loss"}``: the mean Circle Loss of the batch's lists (``data.collate_lists`` builds the batch)."""
        rows = [int(n) for n in lengths.tolist()]
        scores = self.model.scores(self.pooled(texts), rows)
        targets = targets.to(scores.device)
        loss = batch_circle_loss(scores, targets, [n - 1 for n in rows], self.gamma, self.margin)
        with torch.no_grad():
            positive = targets > 0.5
            self.last_stats = {
                "score_pos": float(scores[positive].mean()) if positive.any() else float("nan"),
                "score_neg": float(scores[~positive].mean()) if (~positive).any() else float("nan"),
            }
        return {"loss": loss}


class ListConRankerTrainer(Trainer):
    """Trainer whose saves are ListConRanker folders (only public Trainer methods are overridden)."""

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Add the last step's mean positive and negative scores to the log line (how far apart they are)."""
        module = self.model
        if "loss" in logs and isinstance(module, ListConRankerTrainingModel):
            logs.update({k: round(v, 4) for k, v in module.last_stats.items()})
        super().log(logs, *args, **kwargs)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Write a ListConRanker folder (embedder, tokenizer, head files, config) and the training arguments."""
        output_dir = output_dir or self.args.output_dir
        module: ListConRankerTrainingModel = self.model
        with gathered_for_save(self):
            if not self.args.should_save:
                return
            os.makedirs(output_dir, exist_ok=True)
            module.model.save_pretrained(output_dir)
            torch.save(self.args, os.path.join(output_dir, "training_args.bin"))
