"""Rewrite weight files (``.safetensors``, or ``.pt`` state dicts) with their float tensors in float16, in place.

The small encoder rerankers ship fine-tuned copies of all-MiniLM-L6-v2 (~90 MB in float32). Stored in float16
they take half the space; the loaders read them into float32 (``from_pretrained(dtype=float32)`` casts); the
nDCG@10 of the stored model is measured after this step (checkpoints/README.md). Integer tensors are kept.

    perank half-weights checkpoints/cross-encoder-minilm/model.safetensors
    perank half-weights checkpoints/listconranker-minilm/list_transformer.pt
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from perank.cli.errors import run_guarded
from perank.types import InputError


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="perank half-weights", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("files", nargs="+", type=Path, help=".safetensors or .pt (a state dict of tensors) files")
    args = ap.parse_args(argv)
    import torch
    from safetensors.torch import load_file, save_file

    for path in args.files:
        if path.suffix not in (".safetensors", ".pt"):
            raise InputError(f"{path}: not a .safetensors or .pt file")
        state = load_file(str(path)) if path.suffix == ".safetensors" else torch.load(path, weights_only=True)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise InputError(f"{path}: not a state dict of tensors")
        half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
        tmp = path.with_name(path.name + ".tmp")
        if path.suffix == ".safetensors":
            save_file(half, str(tmp), metadata={"format": "pt"})
        else:
            torch.save(half, tmp)
        os.replace(tmp, path)
        n = sum(v.numel() for v in state.values() if v.dtype == torch.float32)
        print(f"{path}: {n:,} float32 values now float16 ({path.stat().st_size / 2**20:.1f} MiB)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``perank half-weights``: :func:`run`, bad input or an unreadable file as one line and exit status 2."""
    return run_guarded(lambda: run(argv))
