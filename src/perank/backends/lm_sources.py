"""What a model name points at, and which backend serves it: behind :func:`load_language_model`.

A name is a packaged alias, a hub id or a folder; the folder's files say what it holds, so a user never names a
backend for a checkpoint perank knows:

- a PE-Rank checkpoint (any layout of :mod:`perank.backends.pe_rank_backbone`): its decoder LLM, as a causal LM;
- a layerwise reranker (``config.json`` with ``start_layer``): :mod:`perank.backends.layerwise_lm`, whose only
  capability is ``layer_scores``;
- layer heads trained here on a causal LM (``layer_heads_config.json`` beside a LoRA adapter):
  :mod:`perank.backends.layer_heads`, the same ``layer_scores`` handle;
- a LoRA adapter folder, or any other causal LM: :func:`perank.backends.lm_loading.load_causal_lm`.

A hub id is left to transformers unless its ``config.json`` marks one of the first two, whose files are read one
by one: then its snapshot is fetched (from the cache when offline).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from perank.backends.hf_lm import HFLanguageModel
from perank.backends.layer_heads import is_layer_heads_folder, load_layer_heads
from perank.backends.layerwise_lm import is_layerwise_folder, load_layerwise
from perank.backends.lm import LanguageModel
from perank.backends.lm_loading import load_causal_lm, looks_like_path
from perank.backends.pe_rank_backbone import load_backbone, pe_rank_layout
from perank.backends.resolve import resolve_model
from perank.backends.runtime import default_attn_implementation, default_dtype, parse_dtype, resolve_device
from perank.types import InputError

#: config.json fields that mark a checkpoint whose files are read one by one (PE-Rank released, layerwise)
FOLDER_MARKERS = ("encoder_name", "start_layer")


def load_language_model(
    name_or_path: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    base: str | None = None,
    trust_remote_code: bool = False,
) -> LanguageModel:
    """The model named by a packaged alias (``smollm2``), hub id or folder, on ``device`` (default: CUDA when
    there is one) in ``dtype`` (default: the device's), in eval mode; what the folder holds picks the backend (see
    the module docstring): a causal LM, a LoRA adapter (its base loaded and the adapter merged), a PE-Rank
    checkpoint (its decoder LLM) or a layerwise reranker, published or trained here (the ``layer_scores``
    backend). ``base`` replaces the base model an adapter or checkpoint names. A model that cannot be found is
    an InputError naming it.

    A function beside the interface, not a method of it: the interface (:mod:`perank.backends.lm`) knows no
    backend, and every backend imports the interface, so loading lives above both."""
    target = device if isinstance(device, torch.device) else resolve_device(device)
    return _load(
        str(name_or_path), device=target, dtype=parse_dtype(dtype), base=base, trust_remote_code=trust_remote_code
    )


def _load(
    name: str,
    *,
    device: torch.device,
    dtype: torch.dtype | None,
    base: str | None,
    trust_remote_code: bool,
) -> LanguageModel:
    """:func:`load_language_model` with the device and dtype resolved."""
    source = resolve_model(name)
    attention = default_attn_implementation(device)
    folder = local_folder(source)
    if folder is not None:
        try:
            layout = pe_rank_layout(folder)
        except FileNotFoundError as exc:
            raise InputError(str(exc)) from exc
        if layout is not None:
            try:
                backbone = load_backbone(
                    folder, layout, base=base, dtype=dtype or default_dtype(device), attn=attention
                )
            except FileNotFoundError as exc:
                raise InputError(str(exc)) from exc
            return HFLanguageModel(backbone.llm.to(device).eval(), backbone.tokenizer, name=name, attention=attention)
        if is_layer_heads_folder(folder):
            return load_layer_heads(
                folder,
                name=name,
                device=device,
                dtype=dtype or default_dtype(device),
                base=base,
                trust_remote_code=trust_remote_code,
            )
        if is_layerwise_folder(folder):
            return load_layerwise(
                folder,
                name=name,
                device=device,
                dtype=dtype or default_dtype(device),
                trust_remote_code=trust_remote_code,
            )
    llm, tokenizer = load_causal_lm(source, device=device, dtype=dtype, base=base, trust_remote_code=trust_remote_code)
    return HFLanguageModel(llm, tokenizer, name=name, attention=attention)


def local_folder(source: str) -> Path | None:
    """``source`` itself when it is a folder; for a hub id whose config marks a checkpoint read file by file, its
    snapshot; else None (transformers loads the hub id itself)."""
    if Path(source).is_dir():
        return Path(source)
    if looks_like_path(source) or source.count("/") != 1:
        return None
    config = _hub_config(source)
    if not any(marker in config for marker in FOLDER_MARKERS):
        return None
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source))
    except Exception as exc:  # noqa: BLE001 - hub errors have no common base; the message says which model
        raise InputError(f"{source}: cannot fetch this checkpoint from the hub ({type(exc).__name__})") from exc


def _hub_config(repo_id: str) -> dict[str, Any]:
    """The hub model's ``config.json`` (the cached one when offline); empty when there is none to read, so
    that loading reports the model as transformers sees it."""
    from huggingface_hub import hf_hub_download

    try:
        raw = json.loads(Path(hf_hub_download(repo_id, "config.json")).read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - not on the hub, offline without a cache, unreadable: transformers says which
        return {}
    return raw if isinstance(raw, dict) else {}
