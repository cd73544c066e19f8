"""Finding and loading a layerwise MiniCPM reranker checkpoint (bge-reranker-v2-minicpm-layerwise's layout).

The folder holds ``config.json`` (MiniCPM plus ``start_layer``, ``head_multi``, ``head_type``), the weights as
``model.safetensors`` / ``pytorch_model.bin`` (or their sharded ``*.index.json`` form) with ``model.*`` and
``lm_head.*`` keys, the tokenizer, and the checkpoint's own modeling code. By default the weights go into
:class:`~perank.families.llm_layerwise.modeling.LayerwiseReranker` (strictly: a missing or extra key is named);
``trust_remote_code=True`` runs the checkpoint's code through ``AutoModelForCausalLM`` instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from perank.backends.weights import check_weight_files
from perank.families.llm_layerwise.modeling import LayerwiseConfig, LayerwiseReranker
from perank.types import InputError

#: keys some checkpoints carry that are buffers, not weights
IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


def local_folder(model_path: str) -> Path:
    """A local folder for ``model_path``: the folder itself, or the hub cache's snapshot (offline too)."""
    if Path(model_path).is_dir():
        return Path(model_path)
    if Path(model_path).exists() or model_path.count("/") != 1:
        raise InputError(f"{model_path}: not a model folder nor a hub id")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model_path))
    except Exception as exc:  # noqa: BLE001 - hub errors have no common base; the message says which model
        raise InputError(f"{model_path}: cannot find this model locally or on the hub ({type(exc).__name__})") from exc


def _weight_files(folder: Path) -> list[Path]:
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / index).exists():
            shards = json.loads((folder / index).read_text(encoding="utf-8"))["weight_map"].values()
            return [folder / name for name in sorted(set(shards))]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).exists():
            return [folder / name]
    raise InputError(f"{folder}: no model.safetensors or pytorch_model.bin")


def read_state(folder: Path) -> dict[str, Tensor]:
    """Every weight of the checkpoint, by key (safetensors or torch files, weights only)."""
    from safetensors.torch import load_file

    check_weight_files(folder)
    state: dict[str, Tensor] = {}
    for path in _weight_files(folder):
        if path.suffix == ".safetensors":
            state.update(load_file(str(path)))
        else:
            state.update(torch.load(path, map_location="cpu", weights_only=True))
    return {k: v for k, v in state.items() if not k.endswith(IGNORED_SUFFIXES)}


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


class RemoteLayerwise(nn.Module):
    """The checkpoint's own model (``trust_remote_code``), behind :meth:`layer_scores` like the native one."""

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
    model_path: str, *, device: torch.device, dtype: torch.dtype, trust_remote_code: bool
) -> tuple[nn.Module, Any]:
    """``(model, tokenizer)``; the model has ``config`` (``start_layer``, ``num_hidden_layers``) and
    ``layer_scores(input_ids, attention_mask, cutoffs)``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = local_folder(model_path)
    if trust_remote_code:
        try:
            inner = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, trust_remote_code=trust_remote_code)
        except (ImportError, OSError, ValueError) as exc:
            raise InputError(f"{model_path}: its own code does not load here ({exc}); drop trust_remote_code") from exc
        model: nn.Module = RemoteLayerwise(inner).to(device).eval()
    else:
        model = load_native(folder, device=device, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    return model, tokenizer
