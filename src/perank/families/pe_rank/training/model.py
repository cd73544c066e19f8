"""Forward wrappers that turn a :class:`~perank.families.pe_rank.model.PERankModel` into a trainable loss module.

The Trainer sees one ``nn.Module`` whose ``forward(**batch)`` returns ``{"loss": ...}``. Passage embeddings
are computed inside the forward: the frozen encoder runs without gradient (and, because it is frozen, its
outputs are cached by text, which is exact and roughly halves CPU time when windows reuse passages), then
the projector runs with gradient.

- stage 1 (``causal_lm``): next-token cross-entropy on the assistant turn, the ``<PLACEHOLDER>`` replaced by
  the projected passage embedding;
- stage 2 (``rank_lm``): ListMLE over the window's passages at each ``<RANK>`` step. The hidden state that
  predicts the k-th ranked passage is the one at the position *before* the k-th ``<RANK>`` token (that token
  itself carries the k-th passage's embedding as input, exactly as at inference where the chosen passage's
  vector is fed back). ``loss = w1 * L_wo + w2 * L_w + w_kl * KL(wo, w)``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perank.backends.embedding_cache import text_key
from perank.families.pe_rank.model import PERankModel
from perank.families.pe_rank.training.losses import kl_loss, listmle_loss, step_logits

MODEL_TYPES = ("causal_lm", "rank_lm")


class PERankTrainingModel(nn.Module):
    """Stage-1 / stage-2 loss around a PE-Rank model (attribute ``perank``)."""

    # read by Trainer when it reloads a checkpoint's model.safetensors
    _keys_to_ignore_on_save: list[str] | None = None

    def __init__(
        self,
        perank: PERankModel,
        model_type: str = "rank_lm",
        *,
        use_without_content: bool = True,
        use_with_content: bool = False,
        loss1_weight: float = 1.0,
        loss2_weight: float = 1.0,
        kl_loss_weight: float = 0.0,
        listmle_weighting: str = "uniform",
        cache_embeddings: bool = True,
    ) -> None:
        super().__init__()
        if model_type not in MODEL_TYPES:
            raise ValueError(f"unknown model_type {model_type!r}; choose one of {', '.join(MODEL_TYPES)}")
        self.perank = perank
        # the LLM's config: DeepSpeed's "auto" bucket sizes are derived from its hidden_size
        self.config = perank.llm.config
        self.model_type = model_type
        self.use_without_content = use_without_content
        self.use_with_content = use_with_content
        self.loss1_weight = loss1_weight
        self.loss2_weight = loss2_weight
        self.kl_loss_weight = kl_loss_weight
        self.listmle_weighting = listmle_weighting
        self.cache_embeddings = cache_embeddings
        self._cache: dict[str, Tensor] = {}
        self.last_losses: dict[str, float] = {}

    # ------------------------------------------------------------------ Trainer hooks

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs: Any = None, **kwargs: Any) -> None:
        """Checkpoint the LLM's layers (the encoder runs without grad; the projector is tiny)."""
        llm = self.perank.llm
        kw = activation_checkpointing_kwargs or {"use_reentrant": False}
        if hasattr(llm, "activation_checkpointing_enable"):
            llm.activation_checkpointing_enable(activation_checkpointing_kwargs=kw, **kwargs)
        else:  # a PEFT wrapper forwards to the base model
            llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kw)
        if hasattr(llm, "config"):
            llm.config.use_cache = False

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: Any = None, **kwargs: Any) -> None:
        self.activation_checkpointing_enable(gradient_checkpointing_kwargs, **kwargs)

    # ------------------------------------------------------------------ embeddings

    def load_embedding_cache(self, path: str) -> int:
        """Preload frozen-encoder outputs (``{sha1 hex of text: [d_enc]}``, as perank build-rank-data writes them).

        Only valid for the same encoder, pooling and max length; the dimension is checked.
        """
        cache = torch.load(path, map_location="cpu", weights_only=True)
        dim = self.perank.encoder.dim
        for key, vec in cache.items():
            if vec.shape != (dim,):
                raise ValueError(f"{path}: embedding of size {tuple(vec.shape)}, this encoder gives ({dim},)")
            self._cache[key] = vec.float()
        return len(cache)

    def encode(self, texts: list[str]) -> Tensor:
        """Frozen-encoder embeddings ``[n, d_enc]`` (no grad), through the text-keyed cache."""
        encoder = self.perank.encoder
        if not self.cache_embeddings:
            return encoder.encode(texts)
        keys = [text_key(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if missing:
            first = {k: t for k, t in zip(keys, texts)}
            fresh = encoder.encode([first[k] for k in missing])
            for k, v in zip(missing, fresh):
                self._cache[k] = v
        return torch.stack([self._cache[k] for k in keys])

    def project(self, texts: list[str]) -> Tensor:
        """Projected embeddings ``[n, d_llm]`` with gradient through the projector."""
        return self.perank.project(self.encode(texts))

    # ------------------------------------------------------------------ forward

    def forward(self, **batch: Any) -> dict[str, Tensor]:
        if self.model_type == "causal_lm":
            return self._forward_alignment(**batch)
        return self._forward_rank(**batch)

    def _forward_alignment(
        self, input_ids: Tensor, attention_mask: Tensor, labels: Tensor, texts: list[list[str]], **_: Any
    ) -> dict[str, Tensor]:
        flat = [t for row in texts for t in row]
        injected = self.project(flat)
        embeds = self.perank.inputs_embeds(input_ids, injected)
        logits = self.perank.llm(inputs_embeds=embeds, attention_mask=attention_mask).logits
        loss = F.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1), ignore_index=-100
        )
        self.last_losses = {"lm_loss": float(loss.detach())}
        return {"loss": loss}

    def _window_logits(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        passages: list[Tensor],
        queries: list[Tensor | None],
        rankings: list[Tensor],
    ) -> list[Tensor]:
        """Masked step logits ``[n, n]`` per window for one prompt variant."""
        injected = []
        for p, q, r in zip(passages, queries, rankings):
            parts = [p] + ([q] if q is not None else []) + [p[r]]
            injected.append(torch.cat(parts, dim=0))
        embeds = self.perank.inputs_embeds(input_ids, injected)
        hidden, _ = self.perank.hidden_states(embeds, attention_mask=attention_mask)
        out = []
        for row, (p, r) in enumerate(zip(passages, rankings)):
            rank_pos = (input_ids[row] == self.perank.rank_id).nonzero(as_tuple=True)[0]
            h = hidden[row, rank_pos - 1]
            out.append(step_logits(h, p, r.to(h.device)))
        return out

    def _forward_rank(
        self,
        ranking: list[Tensor],
        candidates: list[list[str]],
        queries: list[str],
        input_ids_wo: Tensor | None = None,
        attention_mask_wo: Tensor | None = None,
        input_ids_w: Tensor | None = None,
        attention_mask_w: Tensor | None = None,
        **_: Any,
    ) -> dict[str, Tensor]:
        passages, qs = self.perank.embed_candidates(candidates, list(queries), encode=self.encode)
        rankings = [r.to(passages[0].device) for r in ranking]
        total = passages[0].new_zeros((), dtype=torch.float32)
        logs: dict[str, float] = {}
        logits_wo = logits_w = None
        if self.use_without_content and input_ids_wo is not None:
            logits_wo = self._window_logits(input_ids_wo, attention_mask_wo, passages, qs, rankings)
            l1 = torch.stack([listmle_loss(lg, r, self.listmle_weighting) for lg, r in zip(logits_wo, rankings)]).mean()
            total = total + self.loss1_weight * l1
            logs["listmle_wo"] = float(l1.detach())
        if self.use_with_content and input_ids_w is not None:
            logits_w = self._window_logits(input_ids_w, attention_mask_w, passages, qs, rankings)
            l2 = torch.stack([listmle_loss(lg, r, self.listmle_weighting) for lg, r in zip(logits_w, rankings)]).mean()
            total = total + self.loss2_weight * l2
            logs["listmle_w"] = float(l2.detach())
        if logits_wo is not None and logits_w is not None and self.kl_loss_weight:
            kl = torch.stack([kl_loss(a, b) for a, b in zip(logits_wo, logits_w)]).mean()
            total = total + self.kl_loss_weight * kl
            logs["kl"] = float(kl.detach())
        self.last_losses = logs
        return {"loss": total}
