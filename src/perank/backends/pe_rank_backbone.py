"""The decoder LLM inside a PE-Rank checkpoint, in each layout perank writes or the original code released.

A PE-Rank model is an encoder, a projector and an ordinary causal LM. The LM is loaded here, once, for both
who need it: :func:`perank.backends.lm_sources.load_language_model` serves it as a plain language model (so
``listwise-text`` compares with ``pe-rank`` on the same weights), and the family's loader
(:func:`perank.families.pe_rank.checkpoint.load_pe_rank`) adds the encoder and projector around it. This module
knows only which files hold the LLM in each layout (:func:`pe_rank_layout` tells them apart):

- ``perank``: ``perank_config.json`` names the LLM (``llm_name``) and how its weights are kept (``llm_weights``:
  ``full``, a causal LM folder here; ``lora``, an adapter here over ``llm_name``; ``base``, ``llm_name``
  unchanged); the tokenizer is the folder's;
- ``released-full``: ``config.json`` of a custom model type (``embed_mistral``) whose weights hold the LLM beside
  ``model.encoder.*`` and ``model.projector.*``; the LLM is built as the base architecture from the same config;
- ``released-lora``: ``adapter_config.json`` + ``non_lora_trainables.bin`` (+ ``projector.bin``), the original's
  LoRA output: the base LLM, its non-LoRA trainables, the adapter merged;
- ``released-projector``: ``projector.bin`` beside a base model named by ``config.json``'s ``_name_or_path``.

The LLM comes back on the CPU (LoRA merged there, as the original merges), the caller moves it. A missing required
file is a :class:`FileNotFoundError` naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from perank.backends.lm_loading import causal_lm_weights, load_tokenizer, with_adapter
from perank.backends.resolve import resolve_model

PERANK_CONFIG = "perank_config.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
NON_LORA = "non_lora_trainables.bin"
PROJECTOR_BIN = "projector.bin"
LLM_CONFIG = "config.json"
#: config.json fields the original adds to the LLM config
ENCODER_FIELDS = ("encoder_name", "encoder_pooling", "projector_type", "embedding_size", "use_proj")
#: the parts of the original's state dicts that are not the LLM
NOT_LLM = ("model.encoder.", "model.projector.")


@dataclass
class Backbone:
    """A PE-Rank checkpoint's LLM (CPU), its tokenizer, and the name a run records for the LLM."""

    llm: nn.Module
    tokenizer: Any
    llm_name: str


def pe_rank_layout(path: Path) -> str | None:
    """``perank``, ``released-lora``, ``released-full`` or ``released-projector``; None for any other folder (a
    plain LoRA adapter, which has ``adapter_config.json`` but none of PE-Rank's own files, included).

    Raises :class:`FileNotFoundError` for a folder that is clearly meant as a released full checkpoint
    (``config.json`` names an encoder) but lacks the weights.
    """
    if (path / PERANK_CONFIG).exists():
        return "perank"
    if (path / ADAPTER_CONFIG).exists():
        return "released-lora" if (path / NON_LORA).exists() or (path / PROJECTOR_BIN).exists() else None
    raw = read_json(path / LLM_CONFIG) if (path / LLM_CONFIG).exists() else {}
    if "encoder_name" in raw and weight_files(path):
        return "released-full"
    if (path / PROJECTOR_BIN).exists():
        return "released-projector"
    if "encoder_name" in raw:
        raise FileNotFoundError(
            f"{path}: config.json names an encoder but the folder has neither model weights "
            f"(model.safetensors or pytorch_model.bin) nor {PROJECTOR_BIN}"
        )
    return None


def load_backbone(
    path: Path, layout: str, *, base: str | None, dtype: torch.dtype, attn: str, trainable_lora: bool = False
) -> Backbone:
    """The LLM of the checkpoint ``path`` in ``layout``; ``base`` replaces the base LLM the checkpoint names (a
    LoRA or base-only one); ``trainable_lora`` keeps a perank LoRA adapter apart and trainable."""
    loaders = {
        "perank": _perank,
        "released-full": _released_full,
        "released-lora": _released_lora,
        "released-projector": _released_projector,
    }
    if layout not in loaders:
        raise ValueError(f"unknown PE-Rank layout {layout!r}; expected one of {', '.join(loaders)}")
    return loaders[layout](path, base=base, dtype=dtype, attn=attn, trainable_lora=trainable_lora)


def _perank(path: Path, *, base: str | None, dtype: torch.dtype, attn: str, trainable_lora: bool) -> Backbone:
    raw = read_json(path / PERANK_CONFIG)
    weights = raw.get("llm_weights", "full")
    trust = bool(raw.get("trust_remote_code", False))
    llm_name = base or str(raw["llm_name"])
    needed = {"full": [LLM_CONFIG], "lora": [ADAPTER_CONFIG], "base": []}[weights]
    for name in ["tokenizer_config.json", *needed]:
        if not (path / name).exists():
            raise FileNotFoundError(f"{path}: checkpoint is missing {name}")
    tokenizer = load_tokenizer(path, trust_remote_code=trust)
    source = str(path) if weights == "full" else resolve_model(llm_name)
    llm = causal_lm_weights(source, dtype=dtype, attn=attn, trust_remote_code=trust)
    if weights == "lora":
        llm = with_adapter(llm, path, base=llm_name, trainable=trainable_lora)
    return Backbone(llm, tokenizer, llm_name)


def _released_full(path: Path, *, dtype: torch.dtype, attn: str, **_: Any) -> Backbone:
    from transformers import AutoConfig

    raw = read_json(path / LLM_CONFIG)
    drop = {"model_type", "architectures", "auto_map", "transformers_version", *ENCODER_FIELDS}
    config = AutoConfig.for_model(
        base_model_type(str(raw.get("model_type", ""))), **{k: v for k, v in raw.items() if k not in drop}
    )
    llm = causal_lm_weights(path, dtype=dtype, attn=attn, config=config)
    return Backbone(llm, load_tokenizer(path), str(path))


def _released_projector(path: Path, *, base: str | None, dtype: torch.dtype, attn: str, **_: Any) -> Backbone:
    raw = read_json(path / LLM_CONFIG) if (path / LLM_CONFIG).exists() else {}
    name = base or raw.get("_name_or_path")
    if not name:
        raise ValueError(f"{path}: a projector-only checkpoint needs its base LLM: pass model_base")
    return _base_llm(str(name), path, dtype=dtype, attn=attn)


def _released_lora(path: Path, *, base: str | None, dtype: torch.dtype, attn: str, **_: Any) -> Backbone:
    if not any((path / name).exists() for name in ADAPTER_WEIGHTS):
        raise FileNotFoundError(f"{path}: LoRA checkpoint is missing {ADAPTER_WEIGHTS[0]} (or {ADAPTER_WEIGHTS[1]})")
    if not (path / NON_LORA).exists():
        raise FileNotFoundError(f"{path}: LoRA checkpoint is missing {NON_LORA}")
    name = base or read_json(path / ADAPTER_CONFIG).get("base_model_name_or_path")
    if not name:
        raise ValueError(f"{path}: {ADAPTER_CONFIG} names no base_model_name_or_path: pass model_base")
    backbone = _base_llm(str(name), path, dtype=dtype, attn=attn)
    llm_state = {k: v for k, v in non_lora_trainables(path).items() if not k.startswith(NOT_LLM)}
    if llm_state:
        result = backbone.llm.load_state_dict(llm_state, strict=False)
        if result.unexpected_keys:
            raise ValueError(f"{path}/{NON_LORA}: keys the LLM does not have: {result.unexpected_keys[:5]}")
    backbone.llm = with_adapter(backbone.llm, path, base=str(name))
    return backbone


def _base_llm(name: str, path: Path, *, dtype: torch.dtype, attn: str) -> Backbone:
    """The base causal LM and a tokenizer (the checkpoint's own if it ships one, else the base's)."""
    llm = causal_lm_weights(name, dtype=dtype, attn=attn)
    tokenizer = load_tokenizer(path if (path / "tokenizer_config.json").exists() else name)
    return Backbone(llm, tokenizer, name)


def base_model_type(model_type: str) -> str:
    """The transformers architecture behind the original's custom types (``embed_mistral`` -> ``mistral``)."""
    for prefix in ("embed_", "rank_"):
        if model_type.startswith(prefix):
            return model_type[len(prefix) :]
    if not model_type:
        raise ValueError("config.json has no model_type")
    return model_type


def non_lora_trainables(path: Path) -> dict[str, Tensor]:
    """``non_lora_trainables.bin`` keyed as the LLM sees its weights (the original's own renaming): the LLM's
    entries, and its encoder's and projector's under :data:`NOT_LLM`."""
    state = torch_load(path / NON_LORA)
    state = {(k[len("base_model.") :] if k.startswith("base_model.") else k): v for k, v in state.items()}
    if any(k.startswith("model.model.") for k in state):
        state = {(k[len("model.") :] if k.startswith("model.") else k): v for k, v in state.items()}
    return state


def weight_files(path: Path) -> list[Path]:
    """The LLM state-dict files of a folder (single or sharded; safetensors preferred)."""
    safetensors = sorted(p for p in path.glob("*.safetensors") if not p.name.startswith("adapter_"))
    if safetensors:
        return safetensors
    return sorted(path.glob("pytorch_model*.bin"))


def read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"{path.parent}: checkpoint is missing {path.name}")
    return json.loads(path.read_text())


def torch_load(file: Path) -> dict[str, Tensor]:
    if not file.exists():
        raise FileNotFoundError(f"{file.parent}: checkpoint is missing {file.name}")
    return torch.load(file, map_location="cpu", weights_only=True, mmap=True)
