"""Checking a checkpoint folder's weight files before any library reads them.

A truncated download or a half-copied folder otherwise surfaces as an error deep inside safetensors, torch or
peft that names no file ("Error while deserializing header"). :func:`check_weight_files` reads only each
file's header and size, so it is cheap even for a 7B model, and reports the first bad file by name.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import torch

from perank.types import InputError

#: suffixes of weight files that are checked
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def check_safetensors(path: Path) -> None:
    """Raise :class:`InputError` unless ``path`` holds a complete safetensors file (header and all tensors)."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise InputError(f"{path}: truncated safetensors file ({size} bytes, no header)")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > size - 8:
            raise InputError(
                f"{path}: truncated or corrupt safetensors file (header of {header_len} bytes, file {size})"
            )
        try:
            header = json.loads(handle.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: corrupt safetensors header ({exc})") from exc
    if not isinstance(header, dict):
        raise InputError(f"{path}: corrupt safetensors header")
    ends = [info["data_offsets"][1] for key, info in header.items() if key != "__metadata__" and isinstance(info, dict)]
    needed = 8 + header_len + max(ends, default=0)
    if needed > size:
        raise InputError(f"{path}: truncated safetensors file ({size} bytes, its tensors need {needed})")


def check_torch_file(path: Path) -> None:
    """Raise :class:`InputError` unless ``path`` is a readable torch zip archive (its directory is at the end,
    so a truncated file fails here)."""
    try:
        with zipfile.ZipFile(path) as archive:
            archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: truncated or corrupt weight file ({exc})") from exc


def check_weight_files(folder: str | Path) -> None:
    """Check every weight file directly in ``folder`` (safetensors fully by header, torch files by archive)."""
    folder = Path(folder)
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not path.is_file() or path.suffix not in WEIGHT_SUFFIXES:
            continue
        if path.suffix == ".safetensors":
            check_safetensors(path)
        elif path.name != "training_args.bin":  # a pickled TrainingArguments, never loaded as weights
            check_torch_file(path)


#: keys some checkpoints carry that are buffers, not weights
IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


def read_state(folder: Path) -> dict[str, torch.Tensor]:
    """Every weight of the checkpoint in ``folder``, by key (safetensors or torch files, weights only, shards
    joined), after :func:`check_weight_files`; for models whose published layout perank loads key by key."""
    from safetensors.torch import load_file

    check_weight_files(folder)
    state: dict[str, torch.Tensor] = {}
    for path in weight_files(folder):
        if path.suffix == ".safetensors":
            state.update(load_file(str(path)))
        else:
            state.update(torch.load(path, map_location="cpu", weights_only=True))
    return {k: v for k, v in state.items() if not k.endswith(IGNORED_SUFFIXES)}


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a checkpoint folder: the shards its index names, else its one weight file."""
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / index).exists():
            shards = json.loads((folder / index).read_text(encoding="utf-8"))["weight_map"].values()
            return [folder / name for name in sorted(set(shards))]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).exists():
            return [folder / name]
    raise InputError(f"{folder}: no model.safetensors or pytorch_model.bin")
