"""Loading a causal LM and its tokenizer: a packaged alias, hub id, folder or PEFT LoRA adapter folder.

This is the one loader behind :meth:`perank.backends.lm.LanguageModel.from_pretrained`. Fine-tuning runs with LoRA
(``llm-yes-no``, DeAR) save only the adapter: ``adapter_config.json`` names the base model
(``base_model_name_or_path``) and ``adapter_model.safetensors`` holds the low-rank deltas. A reranker given such a
folder as ``model_path`` must load the base, apply the adapter and merge it, so that scoring runs at the base
model's speed and the rest of the family never sees peft. A base that cannot be found (a deleted folder, a hub id
not in the offline cache) is reported by name, since peft's own error names only the adapter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from perank.backends.resolve import resolve_model
from perank.backends.runtime import default_attn_implementation, default_dtype
from perank.backends.weights import check_weight_files
from perank.types import InputError

ADAPTER_CONFIG = "adapter_config.json"
#: files whose presence means the folder carries its own tokenizer (saved beside the adapter)
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")


def is_adapter_folder(path: str | Path) -> bool:
    """Whether ``path`` is a local folder holding a PEFT adapter (``adapter_config.json``)."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_base(folder: Path) -> str:
    """The base model named by ``folder``'s adapter config, as a loadable name (a relative path is tried
    against the adapter folder too, so a moved pair of sibling folders still loads)."""
    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{folder / ADAPTER_CONFIG}: unreadable adapter config ({exc})") from exc
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not isinstance(base, str) or not base.strip():
        raise InputError(f"{folder / ADAPTER_CONFIG}: names no base_model_name_or_path")
    if not Path(base).exists() and not Path(base).is_absolute() and (folder / base).exists():
        return str((folder / base).resolve())
    return base


def _looks_like_path(name: str) -> bool:
    """A name that can only be a local path (absolute, ``./``, ``~`` or more than one ``/``), not a hub id."""
    return Path(name).is_absolute() or name.startswith((".", "~")) or name.count("/") > 1


def _from_pretrained(
    source: str, *, device: torch.device, dtype: torch.dtype | None, trust: bool
) -> tuple[nn.Module, Any]:
    """``(llm, tokenizer)`` of a plain causal LM on ``device`` in ``dtype`` (default: the device's)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = resolve_model(source)
    tokenizer = AutoTokenizer.from_pretrained(local, trust_remote_code=trust)
    llm = AutoModelForCausalLM.from_pretrained(
        local,
        dtype=dtype or default_dtype(device),
        attn_implementation=default_attn_implementation(device),
        trust_remote_code=trust,
    ).to(device)
    return llm, tokenizer


def _load_plain(source: str, *, device: torch.device, dtype: torch.dtype | None, trust: bool) -> tuple[nn.Module, Any]:
    """:func:`_from_pretrained`, with a missing or unloadable model turned into an InputError naming it."""
    if Path(source).is_dir():
        if not (Path(source) / "config.json").exists():
            raise InputError(f"{source}: no config.json: not a Hugging Face causal LM folder")
        check_weight_files(source)
    try:
        return _from_pretrained(source, device=device, dtype=dtype, trust=trust)
    except FileNotFoundError as exc:  # a packaged alias whose package is missing
        raise InputError(f"{source}: {exc}") from exc
    except OSError as exc:  # not a folder, not in the (offline) hub cache
        raise InputError(f"{source}: cannot load this causal LM ({str(exc).splitlines()[0]})") from exc


def load_causal_lm(
    path: str | Path,
    *,
    device: torch.device,
    dtype: torch.dtype | None = None,
    trust_remote_code: bool = False,
) -> tuple[nn.Module, Any]:
    """``(llm, tokenizer)`` for a causal LM folder, hub id or packaged alias, or for a LoRA adapter folder (its
    base loaded and the adapter merged in). The tokenizer is the adapter folder's when it saved one (training
    may have added tokens), else the base's. The model is in eval mode on ``device``."""
    source = resolve_model(str(path))
    folder = Path(source)
    if not is_adapter_folder(folder):
        llm, tokenizer = _load_plain(source, device=device, dtype=dtype, trust=trust_remote_code)
        return llm.eval(), tokenizer

    check_weight_files(folder)
    if not any(folder.glob("adapter_model.*")):
        raise InputError(f"{folder}: has {ADAPTER_CONFIG} but no adapter_model.safetensors (or .bin)")
    base = adapter_base(folder)
    base_source = resolve_model(base)
    if _looks_like_path(base) and not Path(base_source).exists():
        raise InputError(f"{folder / ADAPTER_CONFIG}: base model {base} not found")
    try:
        llm, tokenizer = _load_plain(base_source, device=device, dtype=dtype, trust=trust_remote_code)
    except InputError as exc:
        raise InputError(f"{folder / ADAPTER_CONFIG}: base model {base} cannot be loaded ({exc})") from exc
    if any((folder / name).exists() for name in TOKENIZER_FILES):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    if len(tokenizer) > llm.get_input_embeddings().weight.shape[0]:
        llm.resize_token_embeddings(len(tokenizer))

    from peft import PeftModel

    try:
        merged = PeftModel.from_pretrained(llm, str(folder)).merge_and_unload()
    except (RuntimeError, ValueError, KeyError) as exc:  # shapes or module names that do not fit the base
        raise InputError(f"{folder}: the adapter does not fit its base model {base} ({exc})") from exc
    return merged.to(device).eval(), tokenizer
