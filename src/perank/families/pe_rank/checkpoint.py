"""Load a PE-Rank model from any checkpoint layout: perank's own, or the ones the original code released.

:func:`load_pe_rank` looks at what a folder holds and dispatches:

- ``perank_config.json``: perank's own format, :meth:`PERankModel.from_pretrained` (full, LoRA, projector-only);
- ``adapter_config.json`` (+ ``non_lora_trainables.bin`` + ``projector.bin``): the original's LoRA output;
- ``config.json`` carrying ``encoder_name`` plus model weights: the released full checkpoint
  (liuqi6777/pe-rank-mistral-jina);
- ``projector.bin`` alone: a stage-1 (alignment) output beside a base model.

Every layout's LLM is loaded by :mod:`perank.backends.pe_rank_backbone` (which also tells the layouts apart), the
loader :func:`perank.backends.lm_sources.load_language_model` uses for a PE-Rank folder; the encoder and projector
of the released layouts are read by :mod:`perank.families.pe_rank.released`. This module only dispatches and finds
the folder (local path, packaged alias or hub id). A missing required file is a :class:`FileNotFoundError` naming
it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from perank.backends.pe_rank_backbone import ADAPTER_CONFIG, LLM_CONFIG, PROJECTOR_BIN, pe_rank_layout
from perank.backends.resolve import resolve_model
from perank.backends.runtime import default_attn_implementation, default_dtype
from perank.backends.weights import check_weight_files
from perank.families.pe_rank.model import CONFIG_NAME, PERankModel
from perank.families.pe_rank.released import load_released

logger = logging.getLogger(__name__)


def checkpoint_format(path: str | Path) -> str:
    """``perank``, ``released-lora``, ``released-full`` or ``released-projector`` (what :func:`load_pe_rank` does).

    Raises :class:`FileNotFoundError` naming the files that were looked for when the folder is none of them.
    """
    path = Path(path)
    fmt = pe_rank_layout(path)
    if fmt is not None:
        return fmt
    if (path / ADAPTER_CONFIG).exists():  # meant as the original's LoRA output: loading names its missing files
        return "released-lora"
    raise FileNotFoundError(
        f"{path}: not a PE-Rank checkpoint; expected {CONFIG_NAME} (perank format), {ADAPTER_CONFIG} (LoRA), "
        f"{LLM_CONFIG} with encoder_name plus weights (full) or {PROJECTOR_BIN} (projector-only)"
    )


def load_pe_rank(
    path_or_id: str | Path,
    *,
    model_base: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    attn_implementation: str | None = None,
    encoder_name: str | None = None,
    encoder_pooling: str | None = None,
    encoder_max_length: int | None = None,
    trust_remote_code: bool = False,
) -> PERankModel:
    """A ready :class:`PERankModel` (eval mode) from a local folder or a hub id of any supported layout.

    ``encoder_*`` override (or, for a projector-only folder without config, supply) the encoder settings;
    ``model_base`` overrides the base LLM of a LoRA or projector-only checkpoint (perank's or the original's).
    """
    path = _local_folder(path_or_id)
    fmt = checkpoint_format(path)
    check_weight_files(path)
    device = torch.device(device)
    dtype = dtype or default_dtype(device)
    attn = attn_implementation or default_attn_implementation(device)
    if fmt == "perank":
        model = PERankModel.from_pretrained(
            path, device=device, dtype=dtype, attn_implementation=attn, model_base=model_base
        )
        return model.eval()
    model = load_released(
        path,
        fmt,
        model_base=model_base,
        device=device,
        dtype=dtype,
        attn=attn,
        overrides={"encoder_name": encoder_name, "encoder_pooling": encoder_pooling},
        encoder_max_length=encoder_max_length,
        trust_remote_code=trust_remote_code,
    )
    logger.info("loaded %s checkpoint %s", fmt, path)
    return model.eval()


def _local_folder(path_or_id: str | Path) -> Path:
    """A local folder for a path, a packaged alias or a hub id (hub ids use the Hugging Face cache)."""
    local = Path(resolve_model(str(path_or_id)))
    if local.is_dir():
        return local
    if local.exists():
        raise FileNotFoundError(f"{path_or_id}: expected a checkpoint folder, got a file")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(path_or_id)))
    except Exception as exc:  # offline, unknown repo, bad id: all mean "not found" to the caller
        raise FileNotFoundError(f"{path_or_id}: no such checkpoint folder, and the hub could not provide it") from exc
