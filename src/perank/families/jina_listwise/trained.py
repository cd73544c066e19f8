"""The small saved layout of a ``jina-listwise`` model trained here (``src/train.py --family jina-listwise``).

The published checkpoint is a full copy of its decoder (:func:`perank.families.jina_listwise.model.split_state`);
a model trained here is a LoRA adapter over a causal LM that is already on the machine (the packaged SmolLM2 by
default), so its folder holds only what training changed or added, a few MB:

- ``adapter_config.json`` + ``adapter_model.safetensors``: the peft adapter, its config naming the base by the
  name it was trained from (``smollm2``: an alias, loadable wherever the package is);
- ``marker_embeddings.safetensors``: the input-embedding rows of the two markers (``doc`` for
  ``<|embed_token|>``, ``query`` for ``<|rerank_token|>``), which training adds to the base's vocabulary;
- ``projector.safetensors``: ``projector.0.weight`` and ``projector.2.weight``, as in the published layout;
- the tokenizer, the two markers added;
- ``jina_listwise_config.json`` (:data:`CONFIG_NAME`): the base, how the marker rows started, and the reranker
  options training used (``max_query_length``, ``max_doc_length``, ``max_length``, ``block_size``), which the
  reranker takes as its defaults for this folder.

:func:`load_trained` loads the base through :func:`perank.backends.lm_loading.load_causal_lm` (which reads the
folder's tokenizer, grows the embedding matrix to it and merges the adapter), writes the two marker rows into the
embedding matrix, and keeps the causal LM's decoder (its public ``get_decoder()``), the vocabulary head unused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from perank.families.jina_listwise.model import PROJECTOR_KEYS, JinaListwiseModel, build_projector, marker_ids
from perank.families.jina_listwise.prompts import MARKERS
from perank.types import InputError

CONFIG_NAME = "jina_listwise_config.json"
PROJECTOR_FILE = "projector.safetensors"
MARKERS_FILE = "marker_embeddings.safetensors"
#: the keys of :data:`MARKERS_FILE`, in the order of :data:`perank.families.jina_listwise.prompts.MARKERS`
MARKER_KEYS = ("doc", "query")
#: the reranker options a trained folder records (its defaults when the folder is loaded)
SETTING_KEYS = ("max_query_length", "max_doc_length", "max_length", "block_size")


def is_trained_folder(folder: Path) -> bool:
    """Whether ``folder`` is in this layout (it has :data:`CONFIG_NAME`) rather than the published one."""
    return (folder / CONFIG_NAME).is_file()


def read_config(folder: Path) -> dict[str, Any]:
    """The folder's :data:`CONFIG_NAME`, checked: a ``base`` name and positive integer ``settings``."""
    path = folder / CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from exc
    settings = config.get("settings") if isinstance(config, dict) else None
    if not isinstance(settings, dict) or not isinstance(config.get("base"), str):
        raise InputError(f"{path}: expected an object with 'base' (text) and 'settings' (an object)")
    for key, value in settings.items():
        if key not in SETTING_KEYS or isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{path}: settings.{key}={value!r}: expected one of {SETTING_KEYS}, a positive integer")
    return config


def trained_settings(folder: Path) -> dict[str, int]:
    """The reranker options recorded in a trained folder (none for the published layout)."""
    return dict(read_config(folder)["settings"]) if is_trained_folder(folder) else {}


def add_markers(llm: nn.Module, tokenizer: Any) -> tuple[tuple[int, int], Tensor]:
    """Add the markers absent from ``tokenizer`` (as special tokens) and grow ``llm``'s embedding matrix when the
    tokenizer outgrows it; ``((doc id, query id), first rows [2, hidden])``.

    A marker the tokenizer already has keeps its embedding row; an added one starts from the mean of the rows of
    the tokens the tokenizer had before (the centre of the vocabulary, as transformers' mean resizing; padded
    rows past the tokenizer, as in Qwen's matrix, are left out), so both new markers start as an average token
    and training moves them apart."""
    before = len(tokenizer)
    missing = [m for m in MARKERS if m not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    if len(tokenizer) > llm.get_input_embeddings().weight.shape[0]:
        llm.resize_token_embeddings(len(tokenizer))  # the same rule as lm_loading.load_causal_lm's
    ids = marker_ids(tokenizer, "the base model")
    weight = llm.get_input_embeddings().weight
    with torch.no_grad():
        mean = weight[: min(before, weight.shape[0])].float().mean(dim=0)
        rows = torch.stack([mean if m in missing else weight[i].float() for m, i in zip(MARKERS, ids)])
    return ids, rows


def save_layout(
    folder: str | Path,
    *,
    adapter: Any,
    projector: nn.Sequential,
    marker_rows: Tensor,
    tokenizer: Any,
    config: dict[str, Any],
) -> None:
    """Write a trained folder (module docstring): ``adapter`` a peft model whose config names its base."""
    from safetensors.torch import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    adapter.save_pretrained(str(out), save_embedding_layers=False)  # the marker rows are saved apart, below
    state = projector.state_dict()
    save_file({f"projector.{k}": v.detach().cpu().contiguous() for k, v in state.items()}, str(out / PROJECTOR_FILE))
    rows = {k: marker_rows[i].detach().float().cpu().contiguous() for i, k in enumerate(MARKER_KEYS)}
    save_file(rows, str(out / MARKERS_FILE))
    tokenizer.save_pretrained(str(out))
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _read(path: Path, keys: tuple[str, ...]) -> dict[str, Tensor]:
    """The tensors of one safetensors file of the layout, exactly ``keys``."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise InputError(f"{path}: missing (a {CONFIG_NAME} folder holds {PROJECTOR_FILE} and {MARKERS_FILE})")
    state = load_file(str(path))
    if sorted(state) != sorted(keys):
        raise InputError(f"{path}: keys {sorted(state)}, expected {sorted(keys)}")
    return state


def load_trained(folder: Path, *, device: torch.device, dtype: torch.dtype) -> tuple[JinaListwiseModel, Any]:
    """``(model in eval mode on device, tokenizer)`` of a trained folder (module docstring)."""
    from perank.backends.lm_loading import load_causal_lm

    where = str(folder)
    read_config(folder)
    projector_state = _read(folder / PROJECTOR_FILE, PROJECTOR_KEYS)
    rows = _read(folder / MARKERS_FILE, MARKER_KEYS)
    llm, tokenizer = load_causal_lm(folder, device=torch.device("cpu"), dtype=dtype)
    doc_id, query_id = marker_ids(tokenizer, where)
    weight = llm.get_input_embeddings().weight
    for key, token in zip(MARKER_KEYS, (doc_id, query_id)):
        if rows[key].shape != weight.shape[1:]:
            raise InputError(
                f"{folder / MARKERS_FILE}: {key} has shape {list(rows[key].shape)}, hidden is {weight.shape[1]}"
            )
        with torch.no_grad():
            weight[token] = rows[key].to(weight.dtype)
    projector = build_projector(projector_state, int(weight.shape[1]), where).to(dtype)
    model = JinaListwiseModel(llm.get_decoder(), projector, doc_id, query_id)
    return model.to(device).eval(), tokenizer
