"""Finding, checking and loading ListConRanker folders.

A folder (the published ``ByteDance/ListConRanker`` one, the tiny test fixture, and what training saves) is::

    config.json, model.safetensors (or pytorch_model.bin), tokenizer files   the embedder, an AutoModel folder
    linear_in_embedding.pt    nn.Linear state dict ("weight", "bias")
    list_transformer.pt       the ListTransformer state dict (published key names)
    listconranker_config.json the sizes (perank's folders only; the published folder's are read from its shapes)

perank's residual mode (``"residual": true`` in the config, see :mod:`.model`) adds ``linear_out_embedding.pt``
(its ``W_out``) and has no scoring head in ``list_transformer.pt``. A folder trained over a frozen embedder may
hold no embedder at all: its config's ``"embedder"`` names it (``"all-minilm-l6-v2"``, the packaged MiniLM), and
the embedder and its tokenizer are read from there, so the folder holds only what was trained.

A hub id goes through the Hugging Face cache (``snapshot_download``), a local path is read as it is, and
``model_path=None`` means the small model trained here (``checkpoints/listconranker-minilm``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from perank.backends.resolve import resolve_model
from perank.backends.weights import check_weight_files
from perank.datasets import REPO_ROOT
from perank.families.listconranker.model import (
    CONFIG_NAME,
    LINEAR_IN_NAME,
    LINEAR_OUT_NAME,
    LIST_TRANSFORMER_NAME,
    TEMPLATE_PREFIX,
    ListConRankerConfig,
    ListConRankerModel,
)
from perank.types import InputError

logger = logging.getLogger(__name__)

PUBLISHED_ID = "ByteDance/ListConRanker"
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "listconranker-minilm"
RECIPE = "recipes/listconranker/train_small.sh"
EMBEDDER_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
_HUB_FILES = ["*.json", "*.txt", "*.model", "*.pt", "*.safetensors"]
_LAYER_KEY = re.compile(r"^list_transformer\.layers\.(\d+)\.")


def locate(model_path: str | None) -> Path:
    """The local folder of ``model_path``: the default small model, a local folder, or a hub id (cache)."""
    if model_path is None:
        if not DEFAULT_CHECKPOINT.is_dir():
            raise InputError(
                f"no small ListConRanker at {DEFAULT_CHECKPOINT}: train it with {RECIPE}, or pass model_path "
                f"(a folder, or {PUBLISHED_ID})"
            )
        return DEFAULT_CHECKPOINT
    local = Path(resolve_model(model_path))
    if local.is_dir():
        return local
    if local.exists():
        raise InputError(f"model_path {model_path}: expected a ListConRanker folder, got a file")
    if model_path.count("/") != 1 or model_path.startswith((".", "/", "~")):
        raise InputError(f"model_path {model_path}: no such folder")
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(model_path, allow_patterns=_HUB_FILES))
        if not any((folder / name).is_file() for name in EMBEDDER_WEIGHTS):  # an older repo: torch weights only
            folder = Path(snapshot_download(model_path, allow_patterns=[*_HUB_FILES, "pytorch_model.bin"]))
        return folder
    except Exception as exc:  # offline and not cached, unknown repo: all mean "not found" to the user
        raise InputError(
            f"model_path {model_path}: not a local folder, and the Hugging Face hub could not provide it "
            f"({type(exc).__name__})"
        ) from exc


def check_layout(folder: Path, config: ListConRankerConfig | None = None) -> None:
    """Name what is missing when ``folder`` is not a ListConRanker folder (e.g. another family's checkpoint);
    ``config``: the folder's ``listconranker_config.json`` when it has one (what else it then needs)."""
    needed = [LINEAR_IN_NAME, LIST_TRANSFORMER_NAME]
    if config is not None and config.residual:
        needed.append(LINEAR_OUT_NAME)
    own_embedder = config is None or config.embedder is None
    if own_embedder:
        needed.append("config.json")
    missing = [name for name in needed if not (folder / name).is_file()]
    if own_embedder and not any((folder / name).is_file() for name in EMBEDDER_WEIGHTS):
        missing.append("model.safetensors or pytorch_model.bin")
    if missing:
        raise InputError(f"{folder}: not a ListConRanker folder: no {', no '.join(missing)}")
    check_weight_files(folder)


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict saved with ``torch.save`` (tensors only: ``weights_only``)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle with objects, a corrupt archive: the file is unusable either way
        raise InputError(f"{path}: not a readable state dict ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: expected a state dict of tensors")
    return state


def own_config(folder: Path) -> ListConRankerConfig | None:
    """The folder's ``listconranker_config.json`` (None for the published folder, which has none)."""
    return ListConRankerConfig.load(folder / CONFIG_NAME) if (folder / CONFIG_NAME).is_file() else None


def read_config(
    folder: Path, embedder_config: Any, linear_in: dict[str, torch.Tensor], lt: dict[str, torch.Tensor]
) -> ListConRankerConfig:
    """``listconranker_config.json`` when present; else (the published folder) the sizes from the weight shapes,
    the head count from the embedder's config and 512 tokens, as the published code has them."""
    config = own_config(folder)
    if config is not None:
        return config
    try:
        list_dim, embedder_dim = linear_in["weight"].shape
        layers = {int(m.group(1)) for k in lt if (m := _LAYER_KEY.match(k))}
        ffn_dim = lt["list_transformer.layers.0.linear1.weight"].shape[0]
        return ListConRankerConfig(
            embedder_dim=int(embedder_dim),
            list_dim=int(list_dim),
            num_heads=int(embedder_config.num_attention_heads),
            num_layers=len(layers),
            ffn_dim=int(ffn_dim),
            max_length=512,
        )
    except (KeyError, ValueError, AttributeError) as exc:
        raise InputError(f"{folder}: cannot read the list transformer's sizes from its weights ({exc})") from exc


def load_embedder(source: str, where: str, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """``(embedder, tokenizer)`` from a folder, packaged alias or hub id (fp32); ``where`` names who asked."""
    from transformers import AutoModel, AutoTokenizer

    local = Path(resolve_model(source))
    if local.is_dir():
        check_weight_files(local)
    try:
        embedder = AutoModel.from_pretrained(str(local), trust_remote_code=trust_remote_code, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(local), trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise InputError(f"{where} {source}: not an embedder folder or hub id ({exc})") from exc
    return embedder, tokenizer


def load_model(
    model_path: str | None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    trust_remote_code: bool = False,
) -> ListConRankerModel:
    """A ListConRanker folder (see the module docstring) as a :class:`ListConRankerModel` in eval mode."""
    folder = locate(model_path)
    own = own_config(folder)
    check_layout(folder, own)
    linear_in = load_state(folder / LINEAR_IN_NAME)
    lt = {k: v for k, v in load_state(folder / LIST_TRANSFORMER_NAME).items() if not k.startswith(TEMPLATE_PREFIX)}
    source = own.embedder if own is not None and own.embedder is not None else str(folder)
    where = f"{folder / CONFIG_NAME}: embedder" if source != str(folder) else "ListConRanker folder"
    embedder, tokenizer = load_embedder(source, where, trust_remote_code)
    config = read_config(folder, embedder.config, linear_in, lt)
    model = ListConRankerModel(
        embedder, tokenizer, config, name_or_path=str(model_path or folder), embedder_source=source
    )
    parts = [
        (model.linear_in_embedding, linear_in, LINEAR_IN_NAME),
        (model.list_transformer, lt, LIST_TRANSFORMER_NAME),
    ]
    if model.linear_out_embedding is not None:
        parts.append((model.linear_out_embedding, load_state(folder / LINEAR_OUT_NAME), LINEAR_OUT_NAME))
    for module, state, name in parts:
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise InputError(f"{folder / name}: does not fit {CONFIG_NAME}'s sizes ({' '.join(first[:2])})") from exc
    return model.to(device=device, dtype=dtype).eval()


def init_model(
    name_or_path: str,
    max_length: int | None = None,
    num_layers: int = 2,
    seed: int = 0,
    trust_remote_code: bool = False,
    residual: bool = False,
) -> ListConRankerModel:
    """A model to train: a ListConRanker folder (e.g. stage 1's output; ``max_length`` replaces its own when
    given; its config fixes the architecture, so ``residual`` must agree with it when asked for), or a plain
    embedder (e.g. ``all-minilm-l6-v2``) with a fresh head of the published sizes scaled to it
    (:meth:`ListConRankerConfig.scaled`, ``num_layers`` layers, ``max_length`` default 512), or with
    ``residual`` the residual branch of those sizes (W_out = 0: it scores exactly as the embedder's cosine)."""
    local = Path(resolve_model(name_or_path))
    if local.is_dir() and (local / LIST_TRANSFORMER_NAME).exists():
        model = load_model(str(local), trust_remote_code=trust_remote_code)
        if residual and not model.config.residual:
            raise InputError(
                f"--residual_init: {name_or_path} is a ListConRanker folder with the published head, whose "
                f"architecture its {CONFIG_NAME} fixes; start a residual model from a plain embedder"
            )
        if max_length is not None:
            model.config = replace(model.config, max_length=max_length)
        return model.train()
    embedder, tokenizer = load_embedder(name_or_path, "--model_name_or_path", trust_remote_code)
    config = ListConRankerConfig.scaled(
        int(embedder.config.hidden_size),
        int(embedder.config.num_attention_heads),
        max_length or 512,
        num_layers,
        residual=residual,
    )
    torch.manual_seed(seed)
    model = ListConRankerModel(embedder, tokenizer, config, name_or_path=name_or_path, embedder_source=name_or_path)
    logger.info("fresh ListConRanker %s on %s: %s", "residual branch" if residual else "head", name_or_path, config)
    return model
