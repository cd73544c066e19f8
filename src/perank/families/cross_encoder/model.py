"""Finding and loading a cross-encoder: any ``AutoModelForSequenceClassification`` with a one-label head.

That covers the BGE rerankers (``BAAI/bge-reranker-base``/``-large``/``-v2-m3``, XLM-RoBERTa), the MS MARCO
MiniLM cross-encoders and the small model trained here (``checkpoints/cross-encoder-minilm``). The score of a
pair is the head's single logit. A folder that is not a cross-encoder (a bare encoder, a bge-m3 ColBERT
folder, a PE-Rank checkpoint) is refused with what it lacks, before transformers would quietly attach a
randomly initialised head to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from perank.backends.resolve import resolve_model
from perank.backends.weights import check_weight_files
from perank.datasets import REPO_ROOT
from perank.types import InputError

#: the small model trained by the recipe below (the default ``model_path``)
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "cross-encoder-minilm"
RECIPE = "recipes/cross_encoder/train_small.sh"

#: files that mark another family's checkpoint, and what it is
OTHER_FAMILIES = {
    "colbert_linear.pt": "a bge-m3 / ColBERT checkpoint",
    "list_transformer.pt": "a ListConRanker checkpoint",
    "perank_config.json": "a PE-Rank checkpoint (--reranker pe-rank)",
    "modules.json": "a sentence-transformers encoder (--reranker dense)",
}


def default_model_path(model_path: str | Path | None) -> str:
    """``model_path`` (a local folder as its absolute path, so a run records the same model however it was
    named), or the small trained model, or an error saying how to get one."""
    if model_path:
        local = Path(model_path)
        return str(local.resolve()) if local.exists() else str(model_path)
    if DEFAULT_CHECKPOINT.exists():
        return str(DEFAULT_CHECKPOINT)
    raise InputError(
        f"no --model-path given and the default cross-encoder {DEFAULT_CHECKPOINT} does not exist; train it "
        f"with {RECIPE}, or pass a model path (e.g. BAAI/bge-reranker-base)"
    )


def _kind_hint(folder: Path) -> str:
    found = [what for name, what in OTHER_FAMILIES.items() if (folder / name).exists()]
    return f" (it looks like {found[0]})" if found else ""


def check_config(config: Any, where: str, folder: Path | None = None) -> None:
    """InputError unless ``config`` describes a sequence classifier with exactly one label."""
    archs = list(getattr(config, "architectures", None) or [])
    hint = _kind_hint(folder) if folder is not None else ""
    if archs and not any(a.endswith("ForSequenceClassification") for a in archs):
        raise InputError(
            f"{where}: not a cross-encoder: no sequence-classification head (config.json architectures "
            f"{', '.join(archs)}){hint}"
        )
    if config.num_labels != 1:
        raise InputError(
            f"{where}: the classification head has {config.num_labels} labels; a cross-encoder reranker needs a "
            "one-label head (its logit is the score)"
        )


def check_folder(folder: Path) -> None:
    """A local model folder has a config and complete weight files (a truncated one is named)."""
    if not (folder / "config.json").exists():
        raise InputError(f"{folder}: no config.json: not a Hugging Face model folder{_kind_hint(folder)}")
    check_weight_files(folder)


def load_cross_encoder(
    model_path: str, *, device: torch.device, dtype: torch.dtype, trust_remote_code: bool = False
) -> tuple[torch.nn.Module, Any]:
    """``(model, tokenizer)`` in eval mode on ``device``; a hub id loads through the hub cache."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    source = resolve_model(model_path)
    folder = Path(source) if Path(source).is_dir() else None
    if folder is not None:
        check_folder(folder)
    config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    check_config(config, model_path, folder)
    model, info = AutoModelForSequenceClassification.from_pretrained(
        source, dtype=dtype, trust_remote_code=trust_remote_code, output_loading_info=True
    )
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        names = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        hint = _kind_hint(folder) if folder is not None else ""
        raise InputError(f"{model_path}: no weights for {names}: the classification head would be random{hint}")
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    return model.to(device).eval(), tokenizer
