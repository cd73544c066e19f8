"""Loading a causal LM and its tokenizer: a packaged alias, hub id, folder or PEFT LoRA adapter folder.

These are the only calls to ``AutoModelForCausalLM.from_pretrained`` and peft's adapter loading that inference
makes: :func:`perank.backends.lm_sources.load_language_model` reaches them through
:mod:`perank.backends.lm_sources`, and PE-Rank's checkpoints load their decoder through them
(:mod:`perank.backends.pe_rank_backbone`), so a model is read one way whoever asks.

Fine-tuning runs with LoRA (``llm-yes-no``, DeAR) save only the adapter: ``adapter_config.json`` names the base
model (``base_model_name_or_path``) and ``adapter_model.safetensors`` holds the low-rank deltas. A reranker given
such a folder as ``model_path`` must load the base, apply the adapter and merge it, so that scoring runs at the
base model's speed and the rest of the family never sees peft. A base that cannot be found (a deleted folder, a
hub id not in the offline cache) is reported by name, since peft's own error names only the adapter.
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


def looks_like_path(name: str) -> bool:
    """A name that can only be a local path (absolute, ``./``, ``~`` or more than one ``/``), not a hub id."""
    return Path(name).is_absolute() or name.startswith((".", "~")) or name.count("/") > 1


def load_tokenizer(source: str | Path, *, trust_remote_code: bool = False) -> Any:
    """The tokenizer of a folder, hub id or packaged alias."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model(str(source)), trust_remote_code=trust_remote_code)


def causal_lm_weights(
    source: str | Path, *, dtype: torch.dtype, attn: str | None, trust_remote_code: bool = False, config: Any = None
) -> nn.Module:
    """The causal LM of a folder, hub id or packaged alias, on the CPU in ``dtype`` with the attention kernel
    ``attn`` (None: the model's own choice); ``config`` replaces the folder's (a checkpoint whose own model type
    transformers does not know). A model that is not there is an InputError naming it."""
    from transformers import AutoModelForCausalLM

    local = resolve_model(str(source))
    options: dict[str, Any] = {"config": config} if config is not None else {}
    if attn is not None:
        options["attn_implementation"] = attn
    try:
        return AutoModelForCausalLM.from_pretrained(local, dtype=dtype, trust_remote_code=trust_remote_code, **options)
    except FileNotFoundError as exc:  # a packaged alias whose package is missing
        raise InputError(f"{source}: {exc}") from exc
    except (OSError, ValueError) as exc:  # not a folder, not in the (offline) hub cache, an unknown model type
        raise InputError(f"{source}: cannot load this causal LM ({str(exc).splitlines()[0]})") from exc


def with_adapter(llm: nn.Module, folder: Path, *, base: str, trainable: bool = False) -> nn.Module:
    """``llm`` with the LoRA adapter of ``folder`` merged into its weights (where ``llm`` is), or kept apart and
    trainable when ``trainable`` (continued training). An adapter that does not fit is an InputError."""
    from peft import PeftModel

    try:
        adapted = PeftModel.from_pretrained(llm, str(folder), is_trainable=trainable)
    except (RuntimeError, ValueError, KeyError) as exc:  # shapes or module names that do not fit the base
        raise InputError(f"{folder}: the adapter does not fit its base model {base} ({exc})") from exc
    return adapted if trainable else adapted.merge_and_unload()


def _load_plain(source: str, *, dtype: torch.dtype, attn: str, trust: bool) -> tuple[nn.Module, Any]:
    """``(llm, tokenizer)`` of a plain causal LM on the CPU, a folder checked first."""
    if Path(source).is_dir():
        if not (Path(source) / "config.json").exists():
            raise InputError(f"{source}: no config.json: not a Hugging Face causal LM folder")
        check_weight_files(source)
    elif looks_like_path(source):
        raise InputError(f"{source}: no such model folder")
    try:
        tokenizer = load_tokenizer(source, trust_remote_code=trust)
    except FileNotFoundError as exc:  # a packaged alias whose package is missing
        raise InputError(f"{source}: {exc}") from exc
    except OSError as exc:
        raise InputError(f"{source}: cannot load this causal LM ({str(exc).splitlines()[0]})") from exc
    return causal_lm_weights(source, dtype=dtype, attn=attn, trust_remote_code=trust), tokenizer


def load_causal_lm(
    path: str | Path,
    *,
    device: torch.device,
    dtype: torch.dtype | None = None,
    base: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[nn.Module, Any]:
    """``(llm, tokenizer)`` for a causal LM folder, hub id or packaged alias, or for a LoRA adapter folder (its
    base, or ``base`` when given, loaded and the adapter merged). The tokenizer is the adapter folder's when it
    saved one (training may have added tokens), else the base's. The model is in eval mode on ``device``."""
    source = resolve_model(str(path))
    folder = Path(source)
    dtype = dtype or default_dtype(device)
    attn = default_attn_implementation(device)
    if not is_adapter_folder(folder):
        llm, tokenizer = _load_plain(source, dtype=dtype, attn=attn, trust=trust_remote_code)
        return llm.to(device).eval(), tokenizer

    check_weight_files(folder)
    if not any(folder.glob("adapter_model.*")):
        raise InputError(f"{folder}: has {ADAPTER_CONFIG} but no adapter_model.safetensors (or .bin)")
    base = base or adapter_base(folder)
    base_source = resolve_model(base)
    if looks_like_path(base) and not Path(base_source).exists():
        raise InputError(f"{folder / ADAPTER_CONFIG}: base model {base} not found")
    try:
        llm, tokenizer = _load_plain(base_source, dtype=dtype, attn=attn, trust=trust_remote_code)
    except InputError as exc:
        raise InputError(f"{folder / ADAPTER_CONFIG}: base model {base} cannot be loaded ({exc})") from exc
    llm = llm.to(device)
    if any((folder / name).exists() for name in TOKENIZER_FILES):
        tokenizer = load_tokenizer(folder, trust_remote_code=trust_remote_code)
    if len(tokenizer) > llm.get_input_embeddings().weight.shape[0]:
        llm.resize_token_embeddings(len(tokenizer))
    return with_adapter(llm, folder, base=base).to(device).eval(), tokenizer
