"""The ``layer_scores`` backend: a layerwise MiniCPM reranker checkpoint (bge-reranker-v2-minicpm-layerwise's layout).

Such a model has no use as a causal LM (its vocabulary head is not what it was trained for); what it offers is a
score head after each layer from ``start_layer`` on, so its handle has the one capability
:attr:`~perank.backends.lm.Capability.LAYER_SCORES` and a family asking it for logits is refused by name.

The folder holds ``config.json`` (MiniCPM plus ``start_layer``, ``head_multi``, ``head_type``), the weights as
``model.safetensors`` / ``pytorch_model.bin`` (or their sharded ``*.index.json`` form) with ``model.*`` and
``lm_head.*`` keys, the tokenizer, and the checkpoint's own modeling code. By default the weights go into perank's
own forward pass, :class:`~perank.backends.minicpm_layerwise.LayerwiseReranker` (strictly: a missing or extra key
is named); ``trust_remote_code=True`` runs the checkpoint's code through ``AutoModelForCausalLM`` instead.

The handle also serves layer heads trained here on another causal LM (:mod:`perank.backends.layer_heads`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from perank.backends.hf_lm import LocalLanguageModel
from perank.backends.lm import Capability
from perank.backends.lm_loading import causal_lm_weights, load_tokenizer
from perank.backends.minicpm_layerwise import LayerwiseConfig, LayerwiseReranker
from perank.backends.padding import last_real, pad_rows
from perank.backends.runtime import eval_mode
from perank.backends.weights import read_state
from perank.types import InputError


def is_layerwise_folder(folder: Path) -> bool:
    """Whether ``folder``'s ``config.json`` marks a layerwise reranker (FlagEmbedding adds ``start_layer``)."""
    try:
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(raw, dict) and "start_layer" in raw


class LayerwiseLanguageModel(LocalLanguageModel):
    """A layerwise reranker and its tokenizer; ``model`` has ``config`` (``start_layer``, ``num_hidden_layers``)
    and ``layer_scores(input_ids, attention_mask, cutoffs)`` giving ``[batch, seq]`` scores per cutoff.

    ``prompt`` is the instruction the heads were trained with when the folder records one (a model trained here,
    :mod:`perank.backends.layer_heads`); None for the published checkpoints (FlagEmbedding's default prompt)."""

    def __init__(
        self, model: nn.Module, tokenizer: Any, *, name: str, attention: str | None, prompt: str | None = None
    ) -> None:
        super().__init__(
            model, tokenizer, name=name, attention=attention, capabilities=frozenset({Capability.LAYER_SCORES})
        )
        self.prompt = prompt

    def scored_layers(self) -> range:
        config = self.model.config
        return range(int(config.start_layer), int(config.num_hidden_layers) + 1)

    def layer_scores(
        self,
        rows: Sequence[Sequence[int]],
        layers: Sequence[int],
        *,
        padding_side: str = "left",
        pad_to_multiple_of: int = 1,
    ) -> list[list[float]]:
        scored = self.scored_layers()
        if not layers or list(layers) != sorted(set(layers)) or not all(x in scored for x in layers):
            raise InputError(
                f"layers {list(layers)}: expected sorted, distinct layers within {scored.start}..{scored.stop - 1}"
            )
        batch = pad_rows(rows, self.pad_id, side=padding_side, multiple=pad_to_multiple_of)
        ids, mask = batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
        with eval_mode(self.model), torch.inference_mode():
            per_layer = self.model.layer_scores(ids, mask, list(layers))
        return [last_real(scores, mask).float().cpu().tolist() for scores in per_layer]


class RemoteLayerwise(nn.Module):
    """The checkpoint's own model (``trust_remote_code``), behind ``layer_scores`` like the native one."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model
        self.config = model.config

    def layer_scores(self, input_ids: Tensor, attention_mask: Tensor, cutoffs: list[int]) -> list[Tensor]:
        out = self.inner(
            input_ids=input_ids, attention_mask=attention_mask, cutoff_layers=cutoffs, output_hidden_states=True
        )
        return [logits.float() for logits in out.logits]


def load_layerwise(
    folder: Path, *, name: str, device: torch.device, dtype: torch.dtype, trust_remote_code: bool
) -> LayerwiseLanguageModel:
    """The layerwise checkpoint in ``folder`` on ``device`` in ``dtype``, in eval mode (perank's forward, or the
    checkpoint's own code with ``trust_remote_code``)."""
    if trust_remote_code:
        try:
            inner = causal_lm_weights(folder, dtype=dtype, attn=None, trust_remote_code=trust_remote_code)
        except (ImportError, ValueError) as exc:
            raise InputError(f"{name}: its own code does not load here ({exc}); drop trust_remote_code") from exc
        model: nn.Module = RemoteLayerwise(inner).to(device).eval()
        attention = None
    else:
        model, attention = load_native(folder, device=device, dtype=dtype), "sdpa"
    tokenizer = load_tokenizer(folder, trust_remote_code=trust_remote_code)
    return LayerwiseLanguageModel(model, tokenizer, name=name, attention=attention)


def load_native(folder: Path, *, device: torch.device, dtype: torch.dtype) -> LayerwiseReranker:
    """The checkpoint in perank's own MiniCPM module."""
    try:
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{folder}: no readable config.json ({exc})") from exc
    config = LayerwiseConfig.from_dict(raw, str(folder))
    with torch.device("meta"):
        model = LayerwiseReranker(config)
    state = read_state(folder)
    expected = set(model.state_dict())
    missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or extra:
        what = f"missing {', '.join(missing[:3])}" if missing else f"unexpected {', '.join(extra[:3])}"
        raise InputError(f"{folder}: weights do not match a layerwise MiniCPM of this config ({what})")
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval()
