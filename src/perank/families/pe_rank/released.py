"""The checkpoint layouts the original PE-Rank code released, read into a :class:`PERankModel`.

Three layouts (:func:`perank.backends.pe_rank_backbone.pe_rank_layout` tells them apart, :func:`load_released`
loads one): ``released-lora`` (``adapter_config.json`` + ``non_lora_trainables.bin`` + ``projector.bin``),
``released-full`` (``config.json`` carrying ``encoder_name`` plus model weights, liuqi6777/pe-rank-mistral-jina) and
``released-projector`` (``projector.bin`` alone, a stage-1 output beside a base model).

Their LLM is loaded by :mod:`perank.backends.pe_rank_backbone`, the loader
:func:`perank.backends.lm_sources.load_language_model` uses too; this module adds what is PE-Rank's own: the
encoder (``model.encoder.*`` of the full state dict or of the LoRA trainables, else its pretrained weights) and the
projector (``model.projector.*``, ``projector.bin``), under the original's naming. The original's encoder module
wraps the Hugging Face model in an attribute named ``encoder``, so its keys read ``model.encoder.encoder.<hf key>``;
both that and a plain ``model.encoder.<hf key>`` are accepted (the prefix that matches the encoder architecture is
chosen). A missing required file is a :class:`FileNotFoundError` naming it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from perank.backends.encoder import PassageEncoder
from perank.backends.pe_rank_backbone import (
    ENCODER_FIELDS,
    LLM_CONFIG,
    NOT_LLM,
    PROJECTOR_BIN,
    load_backbone,
    non_lora_trainables,
    read_json,
    torch_load,
    weight_files,
)
from perank.backends.resolve import resolve_model
from perank.families.pe_rank.model import PERankConfig, PERankModel
from perank.families.pe_rank.projector import build_projector

#: the encoder max length used for released checkpoints (the original's inference setting)
RELEASED_ENCODER_MAX_LENGTH = 512
#: the layouts this module reads
RELEASED_FORMATS = ("released-lora", "released-full", "released-projector")


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
    """Load a folder of layout ``fmt`` (one of :data:`RELEASED_FORMATS`, as :func:`pe_rank_layout` named it)."""
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
    backbone = load_backbone(path, "released-full", base=None, dtype=dtype, attn=attn)
    extra = _read_prefixed(path, NOT_LLM)
    return _assemble(
        path,
        llm_name=backbone.llm_name,
        llm=backbone.llm,
        tokenizer=backbone.tokenizer,
        settings=_encoder_settings(read_json(path / LLM_CONFIG), kw["overrides"]),
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
    raw = read_json(path / LLM_CONFIG) if (path / LLM_CONFIG).exists() else {}
    backbone = load_backbone(path, "released-projector", base=model_base, dtype=dtype, attn=attn)
    return _assemble(
        path,
        llm_name=backbone.llm_name,
        llm=backbone.llm,
        tokenizer=backbone.tokenizer,
        settings=_encoder_settings(raw, kw["overrides"]),
        encoder_state={},
        projector_state=_projector_state(torch_load(path / PROJECTOR_BIN)),
        device=device,
        encoder_max_length=kw["encoder_max_length"],
        trust_remote_code=kw["trust_remote_code"],
    )


def _load_lora(
    path: Path, *, model_base: str | None, device: torch.device, dtype: torch.dtype, attn: str, **kw: Any
) -> PERankModel:
    """The original's LoRA output: the merged LLM (with its non-LoRA trainables), the projector and the encoder's
    trainables."""
    backbone = load_backbone(path, "released-lora", base=model_base, dtype=dtype, attn=attn)
    raw = read_json(path / LLM_CONFIG) if (path / LLM_CONFIG).exists() else {}
    trainables = non_lora_trainables(path)
    projector_state = _projector_state(trainables)
    if (path / PROJECTOR_BIN).exists():
        projector_state = _projector_state(torch_load(path / PROJECTOR_BIN)) or projector_state
    if not projector_state:
        raise FileNotFoundError(f"{path}: LoRA checkpoint is missing {PROJECTOR_BIN} (no projector weights found)")
    return _assemble(
        path,
        llm_name=backbone.llm_name,
        llm=backbone.llm,
        tokenizer=backbone.tokenizer,
        settings=_encoder_settings(raw, kw["overrides"]),
        encoder_state=_strip(trainables, "model.encoder."),
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


# ---------------------------------------------------------------------------------------------- helpers


def _encoder_settings(raw: dict[str, Any], overrides: dict[str, str | None]) -> dict[str, Any]:
    """Encoder and projector settings from config.json, with explicit arguments taking precedence."""
    settings = {k: raw.get(k) for k in (*ENCODER_FIELDS, "encoder_max_length")}
    settings.update({k: v for k, v in overrides.items() if v})
    if not settings.get("encoder_name"):
        raise ValueError("the checkpoint's config.json names no encoder_name: pass encoder_name")
    settings["encoder_pooling"] = settings.get("encoder_pooling") or "mean"
    return settings


def _read_prefixed(path: Path, prefixes: Iterable[str]) -> dict[str, Tensor]:
    """Only the tensors whose names start with one of ``prefixes`` (the LLM itself is loaded by transformers)."""
    prefixes = tuple(prefixes)
    out: dict[str, Tensor] = {}
    for file in weight_files(path):
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118  (safe_open is not a dict)
                    if key.startswith(prefixes):
                        out[key] = handle.get_tensor(key)
        else:
            out.update({k: v for k, v in torch_load(file).items() if k.startswith(prefixes)})
    return out


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
