"""The checkpoint layouts the original PE-Rank code released, read into a :class:`PERankModel`.

Three layouts (:func:`released_format` tells them apart, :func:`load_released` loads one):

- ``released-lora``: ``adapter_config.json`` (+ ``non_lora_trainables.bin`` + ``projector.bin``), the original's
  LoRA output. The base LLM (``model_base`` or the adapter's ``base_model_name_or_path``) gets the non-LoRA
  trainables, then the adapter is loaded with peft and merged;
- ``released-full``: ``config.json`` carrying ``encoder_name`` plus model weights (liuqi6777/pe-rank-mistral-jina).
  Its ``model_type`` is a custom one (``embed_mistral``); the LLM is built as the base architecture
  (``mistral``) from the same config, and the state dict's ``model.encoder.*`` and ``model.projector.*`` entries
  go to the encoder and the projector;
- ``released-projector``: ``projector.bin`` alone, a stage-1 (alignment) output beside a base model
  (``model_base`` or the config's ``_name_or_path``); the encoder comes from ``encoder_name`` with its own
  pretrained weights.

These live apart from :mod:`perank.families.pe_rank.checkpoint` (which only detects and dispatches) because
everything here is about the original's naming: its custom model types, its state-dict key prefixes and its
file names. The original's encoder module wraps the Hugging Face model in an attribute named ``encoder``, so
its keys read ``model.encoder.encoder.<hf key>``; both that and a plain ``model.encoder.<hf key>`` are accepted
(the prefix that matches the encoder architecture is chosen). A missing required file is a
:class:`FileNotFoundError` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from perank.backends.encoder import PassageEncoder
from perank.backends.resolve import resolve_model
from perank.families.pe_rank.model import PERankConfig, PERankModel
from perank.families.pe_rank.projector import build_projector

#: config.json fields the original adds to the LLM config
ENCODER_FIELDS = ("encoder_name", "encoder_pooling", "projector_type", "embedding_size", "use_proj")
#: the encoder max length used for released checkpoints (the original's inference setting)
RELEASED_ENCODER_MAX_LENGTH = 512

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
NON_LORA = "non_lora_trainables.bin"
PROJECTOR_BIN = "projector.bin"
LLM_CONFIG = "config.json"
#: the layouts this module reads, as :func:`released_format` names them
RELEASED_FORMATS = ("released-lora", "released-full", "released-projector")


def released_format(path: Path) -> str | None:
    """Which released layout ``path`` holds, or None when it is none of them.

    Raises :class:`FileNotFoundError` for a folder that is clearly meant as a released full checkpoint
    (``config.json`` names an encoder) but lacks the weights.
    """
    if (path / ADAPTER_CONFIG).exists():
        return "released-lora"
    raw = _read_json(path / LLM_CONFIG) if (path / LLM_CONFIG).exists() else {}
    if "encoder_name" in raw and _weight_files(path):
        return "released-full"
    if (path / PROJECTOR_BIN).exists():
        return "released-projector"
    if "encoder_name" in raw:
        raise FileNotFoundError(
            f"{path}: config.json names an encoder but the folder has neither model weights "
            f"(model.safetensors or pytorch_model.bin) nor {PROJECTOR_BIN}"
        )
    return None


def load_released(
    path: Path,
    fmt: str,
    *,
    model_base: str | None,
    device: torch.device,
    dtype: torch.dtype,
    attn: str,
    overrides: dict[str, str | None],
    encoder_max_length: int | None,
    trust_remote_code: bool,
) -> PERankModel:
    """Load a folder of layout ``fmt`` (one of :data:`RELEASED_FORMATS`, as :func:`released_format` named it)."""
    loaders = {"released-lora": _load_lora, "released-full": _load_full, "released-projector": _load_projector_only}
    if fmt not in loaders:
        raise ValueError(f"unknown released layout {fmt!r}; expected one of {', '.join(RELEASED_FORMATS)}")
    return loaders[fmt](
        path,
        model_base=model_base,
        device=device,
        dtype=dtype,
        attn=attn,
        overrides=overrides,
        encoder_max_length=encoder_max_length,
        trust_remote_code=trust_remote_code,
    )


# ---------------------------------------------------------------------------------------------- the three layouts


def _load_full(path: Path, *, device: torch.device, dtype: torch.dtype, attn: str, **kw: Any) -> PERankModel:
    """The released full checkpoint: one state dict holding LLM, encoder and projector."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    raw = _read_json(path / LLM_CONFIG)
    settings = _encoder_settings(raw, kw["overrides"])
    base_type = base_model_type(str(raw.get("model_type", "")))
    drop = {"model_type", "architectures", "auto_map", "transformers_version", *ENCODER_FIELDS}
    llm_config = AutoConfig.for_model(base_type, **{k: v for k, v in raw.items() if k not in drop})
    llm = AutoModelForCausalLM.from_pretrained(path, config=llm_config, dtype=dtype, attn_implementation=attn)
    extra = _read_prefixed(path, ("model.encoder.", "model.projector."))
    tokenizer = AutoTokenizer.from_pretrained(path)
    return _assemble(
        path,
        llm_name=str(path),
        llm=llm,
        tokenizer=tokenizer,
        settings=settings,
        encoder_state=_strip(extra, "model.encoder."),
        projector_state=_projector_state(extra),
        device=device,
        encoder_max_length=kw["encoder_max_length"],
        trust_remote_code=kw["trust_remote_code"],
    )


def _load_projector_only(
    path: Path, *, model_base: str | None, device: torch.device, dtype: torch.dtype, attn: str, **kw: Any
) -> PERankModel:
    """A ``projector.bin`` beside (or pointing at) a base LLM; the encoder keeps its pretrained weights."""
    raw = _read_json(path / LLM_CONFIG) if (path / LLM_CONFIG).exists() else {}
    base = model_base or raw.get("_name_or_path")
    if not base:
        raise ValueError(f"{path}: a projector-only checkpoint needs its base LLM: pass model_base")
    llm, tokenizer = _load_base_llm(str(base), path, dtype=dtype, attn=attn)
    return _assemble(
        path,
        llm_name=str(base),
        llm=llm,
        tokenizer=tokenizer,
        settings=_encoder_settings(raw, kw["overrides"]),
        encoder_state={},
        projector_state=_projector_state(_torch_load(path / PROJECTOR_BIN)),
        device=device,
        encoder_max_length=kw["encoder_max_length"],
        trust_remote_code=kw["trust_remote_code"],
    )


def _load_lora(
    path: Path, *, model_base: str | None, device: torch.device, dtype: torch.dtype, attn: str, **kw: Any
) -> PERankModel:
    """The original's LoRA output: base LLM + non-LoRA trainables + projector + a merged peft adapter."""
    from peft import PeftModel

    if not any((path / name).exists() for name in ADAPTER_WEIGHTS):
        raise FileNotFoundError(f"{path}: LoRA checkpoint is missing {ADAPTER_WEIGHTS[0]} (or {ADAPTER_WEIGHTS[1]})")
    if not (path / NON_LORA).exists():
        raise FileNotFoundError(f"{path}: LoRA checkpoint is missing {NON_LORA}")
    adapter_cfg = _read_json(path / ADAPTER_CONFIG)
    base = model_base or adapter_cfg.get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{path}: {ADAPTER_CONFIG} names no base_model_name_or_path: pass model_base")
    raw = _read_json(path / LLM_CONFIG) if (path / LLM_CONFIG).exists() else {}
    llm, tokenizer = _load_base_llm(str(base), path, dtype=dtype, attn=attn)

    trainables = _normalise_non_lora(_torch_load(path / NON_LORA))
    projector_state = _projector_state(trainables)
    if (path / PROJECTOR_BIN).exists():
        projector_state = _projector_state(_torch_load(path / PROJECTOR_BIN)) or projector_state
    if not projector_state:
        raise FileNotFoundError(f"{path}: LoRA checkpoint is missing {PROJECTOR_BIN} (no projector weights found)")
    encoder_state = _strip(trainables, "model.encoder.")
    llm_state = {k: v for k, v in trainables.items() if not k.startswith(("model.encoder.", "model.projector."))}
    if llm_state:
        result = llm.load_state_dict(llm_state, strict=False)
        if result.unexpected_keys:
            raise ValueError(f"{path}/{NON_LORA}: keys the LLM does not have: {result.unexpected_keys[:5]}")
    llm = PeftModel.from_pretrained(llm, str(path)).merge_and_unload()
    return _assemble(
        path,
        llm_name=str(base),
        llm=llm,
        tokenizer=tokenizer,
        settings=_encoder_settings(raw, kw["overrides"]),
        encoder_state=encoder_state,
        projector_state=projector_state,
        device=device,
        encoder_max_length=kw["encoder_max_length"],
        trust_remote_code=kw["trust_remote_code"],
    )


# ---------------------------------------------------------------------------------------------- assembling


def _assemble(
    path: Path,
    *,
    llm_name: str,
    llm: nn.Module,
    tokenizer: Any,
    settings: dict[str, Any],
    encoder_state: dict[str, Tensor],
    projector_state: dict[str, Tensor],
    device: torch.device,
    encoder_max_length: int | None,
    trust_remote_code: bool,
) -> PERankModel:
    """Build the encoder and projector around a loaded LLM and wrap everything in a :class:`PERankModel`."""
    if not projector_state:
        raise FileNotFoundError(f"{path}: no projector weights (model.projector.*) in the checkpoint")
    max_length = encoder_max_length or int(settings.get("encoder_max_length") or RELEASED_ENCODER_MAX_LENGTH)
    encoder = build_encoder(
        settings["encoder_name"],
        pooling=settings["encoder_pooling"],
        max_length=max_length,
        state=encoder_state,
        trust_remote_code=trust_remote_code,
    )
    projector_type = settings.get("projector_type") or infer_projector_type(projector_state)
    embedding_size = int(settings.get("embedding_size") or encoder.dim)
    hidden_size = int(llm.config.hidden_size)
    projector = build_projector(projector_type, embedding_size, hidden_size)
    projector.load_state_dict(projector_state)
    config = PERankConfig(
        llm_name=llm_name,
        encoder_name=settings["encoder_name"],
        encoder_pooling=settings["encoder_pooling"],
        encoder_max_length=max_length,
        projector_type=projector_type,
        embedding_size=embedding_size,
        hidden_size=hidden_size,
        trust_remote_code=trust_remote_code,
        extra={"source_checkpoint": str(path)},
    )
    return PERankModel(config, llm.to(device), tokenizer, encoder.to(device), projector)


def build_encoder(
    encoder_name: str,
    *,
    pooling: str,
    max_length: int,
    state: dict[str, Tensor],
    trust_remote_code: bool = False,
) -> PassageEncoder:
    """The encoder architecture of ``encoder_name`` carrying the checkpoint's weights (its own when none)."""
    if not state:
        return PassageEncoder(encoder_name, pooling=pooling, max_length=max_length, trust_remote_code=trust_remote_code)
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    local = resolve_model(encoder_name)
    model = AutoModel.from_config(
        AutoConfig.from_pretrained(local, trust_remote_code=trust_remote_code), trust_remote_code=trust_remote_code
    )
    expected = set(model.state_dict())
    # the original wraps the HF model as `.encoder`, giving `encoder.<key>`: keep the reading that fits
    candidates = [state, _strip(state, "encoder.")]
    best = max(candidates, key=lambda s: len(expected & set(s)))
    result = model.load_state_dict(best, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("pooler.")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"encoder weights do not fit {encoder_name}: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    tokenizer = AutoTokenizer.from_pretrained(local, trust_remote_code=trust_remote_code)
    return PassageEncoder(
        encoder_name,
        pooling=pooling,
        max_length=max_length,
        trust_remote_code=trust_remote_code,
        model=model,
        tokenizer=tokenizer,
    )


def infer_projector_type(state: dict[str, Tensor]) -> str:
    """``linear`` or ``mlp{N}x_gelu`` from the Linear layers a projector state dict holds (0, 2, 4, ...)."""
    layers = {int(k.split(".")[0]) for k in state if k.split(".")[0].isdigit()}
    if not layers:
        raise ValueError(f"cannot tell the projector type from keys {sorted(state)[:4]}")
    depth = len(layers)
    return "linear" if depth == 1 else f"mlp{depth}x_gelu"


def base_model_type(model_type: str) -> str:
    """The transformers architecture behind the original's custom types (``embed_mistral`` -> ``mistral``)."""
    for prefix in ("embed_", "rank_"):
        if model_type.startswith(prefix):
            return model_type[len(prefix) :]
    if not model_type:
        raise ValueError("config.json has no model_type")
    return model_type


# ---------------------------------------------------------------------------------------------- helpers


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"{path.parent}: checkpoint is missing {path.name}")
    return json.loads(path.read_text())


def _encoder_settings(raw: dict[str, Any], overrides: dict[str, str | None]) -> dict[str, Any]:
    """Encoder and projector settings from config.json, with explicit arguments taking precedence."""
    settings = {k: raw.get(k) for k in (*ENCODER_FIELDS, "encoder_max_length")}
    settings.update({k: v for k, v in overrides.items() if v})
    if not settings.get("encoder_name"):
        raise ValueError("the checkpoint's config.json names no encoder_name: pass encoder_name")
    settings["encoder_pooling"] = settings.get("encoder_pooling") or "mean"
    return settings


def _weight_files(path: Path) -> list[Path]:
    """The LLM state-dict files of a folder (single or sharded; safetensors preferred)."""
    safetensors = sorted(p for p in path.glob("*.safetensors") if not p.name.startswith("adapter_"))
    if safetensors:
        return safetensors
    return sorted(path.glob("pytorch_model*.bin"))


def _read_prefixed(path: Path, prefixes: Iterable[str]) -> dict[str, Tensor]:
    """Only the tensors whose names start with one of ``prefixes`` (the LLM itself is loaded by transformers)."""
    prefixes = tuple(prefixes)
    out: dict[str, Tensor] = {}
    for file in _weight_files(path):
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118  (safe_open is not a dict)
                    if key.startswith(prefixes):
                        out[key] = handle.get_tensor(key)
        else:
            out.update({k: v for k, v in _torch_load(file).items() if k.startswith(prefixes)})
    return out


def _torch_load(file: Path) -> dict[str, Tensor]:
    if not file.exists():
        raise FileNotFoundError(f"{file.parent}: checkpoint is missing {file.name}")
    return torch.load(file, map_location="cpu", weights_only=True, mmap=True)


def _strip(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _projector_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Projector tensors keyed as perank's ``nn.Sequential`` (``0.weight``, ``2.bias``, ...).

    Everything up to and including ``projector.`` is dropped (``base_model.model.model.projector.0.weight``
    and ``model.projector.0.weight`` both give ``0.weight``); a bare ``projector.weight`` (the original's
    ``linear`` type, a plain ``nn.Linear``) becomes ``0.weight``.
    """
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if "projector." not in key:
            continue
        rest = key.split("projector.", 1)[1]
        if rest in ("weight", "bias"):
            rest = f"0.{rest}"
        out[rest] = value.float()
    return out


def _normalise_non_lora(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Key names of ``non_lora_trainables.bin`` as the LLM sees them (the original's own renaming)."""
    state = {(k[len("base_model.") :] if k.startswith("base_model.") else k): v for k, v in state.items()}
    if any(k.startswith("model.model.") for k in state):
        state = {(k[len("model.") :] if k.startswith("model.") else k): v for k, v in state.items()}
    return state


def _load_base_llm(base: str, path: Path, *, dtype: torch.dtype, attn: str) -> tuple[nn.Module, Any]:
    """The base causal LM and a tokenizer (the checkpoint's own if it ships one, else the base's)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = resolve_model(base)
    llm = AutoModelForCausalLM.from_pretrained(local, dtype=dtype, attn_implementation=attn)
    tok_source = path if (path / "tokenizer_config.json").exists() else local
    return llm, AutoTokenizer.from_pretrained(tok_source)
