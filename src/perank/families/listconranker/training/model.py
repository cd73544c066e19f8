"""The loss module the Trainer trains, and the Trainer that saves ListConRanker folders.

:class:`ListConRankerTrainingModel` turns a batch of lists (texts, list lengths, relevance targets) into the
mean Circle Loss of its lists. With ``freeze_embedder`` (stage 1) the embedder is a fixed feature extractor:
it runs in eval mode (no dropout) without gradient, so its pooled output for a text never changes and is
kept in memory (``cache_embeddings``): after the first epoch only the small list transformer runs. In residual
mode the cache can be preloaded from the dense teacher's embedding file (:meth:`preload_embeddings`), so no
training text the teacher already encoded is embedded again.

:class:`ListConRankerTrainer` writes every save (``output_dir`` and each ``checkpoint-*``) as a ListConRanker
folder that the ``listconranker`` reranker and a later stage read (:meth:`ListConRankerModel.save_pretrained`).
A residual model over a frozen embedder is saved without the embedder (the folder's config names it), and each
log line carries the mean seconds per optimizer step since the previous one (``s_per_step``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from transformers import Trainer

from perank.backends.embedding_cache import text_key
from perank.families.listconranker.model import ListConRankerModel
from perank.families.listconranker.training.losses import batch_circle_loss
from perank.training.saving import gathered_for_save
from perank.training.step_times import StepTimer
from perank.types import InputError

#: the file a Trainer checkpoint of a head-only folder holds the trainable tensors in, for ``resume_from_checkpoint``
TRAINER_WEIGHTS = "model.safetensors"
#: how many preloaded vectors are compared with the embedder's own, and how close they must be (cosine)
PROBES, PROBE_COSINE = 4, 0.9999


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
        self._cache: dict[str, Tensor] = {}  # text_key(text) -> pooled (or, preloaded, normalised) embedding
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

    @property
    def head_only(self) -> bool:
        """Whether saves leave the embedder out: a residual model whose embedder stays frozen."""
        return self.freeze_embedder and self.model.config.residual

    def preload_embeddings(self, path: str, texts: Iterable[str]) -> int:
        """Fill the cache from a ``.pt`` file of normalised embeddings (``{text_key: [d]}``, the dense teacher's,
        ``perank build-pair-data --embeddings``); returns how many it holds. Residual mode over a frozen embedder
        only: it normalises every row first, so a normalised vector stands for the pooled one exactly, whereas
        the published head reads the pooled vector itself. The file must hold this embedder's vectors at this
        max length: up to :data:`PROBES` of ``texts`` found in it are embedded again and must agree."""
        if not self.head_only:
            raise InputError("--embedding_cache: only for a residual model (--residual_init) over a frozen embedder")
        model = self.model
        try:
            cache = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a missing file, a pickle with objects, a corrupt archive: unusable either way
            raise InputError(f"--embedding_cache {path}: not a readable embedding file ({type(exc).__name__})") from exc
        dim = model.config.embedder_dim
        if not isinstance(cache, dict) or not all(isinstance(v, Tensor) and v.shape == (dim,) for v in cache.values()):
            raise InputError(f"--embedding_cache {path}: expected {{text key: tensor of shape ({dim},)}}")
        probes = list(dict.fromkeys(t for t in texts if text_key(t) in cache))[:PROBES]
        if not probes:
            raise InputError(f"--embedding_cache {path}: holds none of the training texts")
        with torch.no_grad():
            own = F.normalize(model.embed(model.tokenize(probes, model.config.max_length)).float(), dim=-1).cpu()
        stored = F.normalize(torch.stack([cache[text_key(t)].float() for t in probes]), dim=-1)
        worst = float((own * stored).sum(dim=-1).min())
        if worst < PROBE_COSINE:
            raise InputError(
                f"--embedding_cache {path}: its vectors are not this embedder's at max_length "
                f"{model.config.max_length} (cosine {worst:.4f} with the embedder's own on a training text)"
            )
        self._cache.update({k: v.to(device=model.device, dtype=model.dtype) for k, v in cache.items()})
        return len(cache)

    def pooled(self, texts: list[str]) -> Tensor:
        """Pooled embeddings of ``texts``: with gradient, or from the frozen embedder (cached by text)."""
        model = self.model
        if not self.freeze_embedder:
            return model.embed(model.tokenize(texts, model.config.max_length))
        keys = [text_key(t) for t in texts]
        missing = list(dict.fromkeys((k, t) for k, t in zip(keys, texts) if k not in self._cache))
        fresh: dict[str, Tensor] = {}
        if missing:
            with torch.no_grad():
                vectors = model.embed(model.tokenize([t for _, t in missing], model.config.max_length)).detach()
            fresh = {k: v for (k, _), v in zip(missing, vectors)}
            if self.cache_embeddings:
                self._cache.update(fresh)
        return torch.stack([self._cache[k] if k in self._cache else fresh[k] for k in keys])

    def forward(self, texts: list[str], lengths: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """``{"loss"}``: the mean Circle Loss of the batch's lists (``data.collate_lists`` builds the batch)."""
        rows = [int(n) for n in lengths.tolist()]
        scores = self.model.loss_scores(self.pooled(texts), rows)
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_timer = StepTimer()
        self.add_callback(self.step_timer)

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Add the last step's mean positive and negative scores (how far apart they are) and the mean seconds
        per step since the previous log line to the log line (the first steps also embed their texts)."""
        module = self.model
        if "loss" in logs and isinstance(module, ListConRankerTrainingModel):
            logs.update({k: round(v, 4) for k, v in module.last_stats.items()})
            seconds = self.step_timer.take()
            if seconds is not None:
                logs["s_per_step"] = round(seconds, 4)
        super().log(logs, *args, **kwargs)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Write a ListConRanker folder (embedder, tokenizer, head files, config) and the training arguments.

        A residual model over a frozen embedder is written without the embedder (its config names it); inside a
        Trainer checkpoint the trainable tensors then also go to ``model.safetensors``, the file a resumed
        Trainer requires (its loader reads them into the head that the runner already built from the folder)."""
        from safetensors.torch import save_file

        output_dir = output_dir or self.args.output_dir
        module: ListConRankerTrainingModel = self.model
        with gathered_for_save(self):
            if not self.args.should_save:
                return
            os.makedirs(output_dir, exist_ok=True)
            module.model.save_pretrained(output_dir, save_embedder=not module.head_only)
            if _internal_call and module.head_only:
                trainable = {n: p.detach().cpu().contiguous() for n, p in module.named_parameters() if p.requires_grad}
                save_file(trainable, os.path.join(output_dir, TRAINER_WEIGHTS), metadata={"format": "pt"})
            torch.save(self.args, os.path.join(output_dir, "training_args.bin"))
