"""Where and how a model runs: device, dtype, attention kernel, eval mode, timing barriers.

Shared by every family that runs a torch model, so that ``--device``/``-o dtype=`` mean the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from perank.types import InputError

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The given device, else CUDA when there is one, else CPU.

    A device this machine does not have (``cuda`` without a GPU, ``cuda:3`` with two) is bad input named in
    one line here, rather than a driver error deep inside the first forward pass.
    """
    if not device:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"--device {device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from exc
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
        if target.index is not None and target.index >= torch.cuda.device_count():
            raise InputError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return target


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``"bf16"``/``"bfloat16"``/... or a torch dtype; ``None``/``"auto"`` means the device's default."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return None
    if dtype not in _DTYPES:
        raise InputError(f"unknown dtype {dtype!r}; choose one of {', '.join(sorted(_DTYPES))} or auto")
    return _DTYPES[dtype]


def default_dtype(device: torch.device | str) -> torch.dtype:
    """bf16 on a GPU that supports it, fp32 on CPU (bf16 matmuls are several times slower on this CPU)."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def default_attn_implementation(device: torch.device | str) -> str:
    """flash_attention_2 when installed on a GPU, else PyTorch SDPA."""
    if torch.device(device).type == "cuda":
        try:
            import flash_attn  # noqa: F401

            return "flash_attention_2"
        except ImportError:
            pass
    return "sdpa"


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so that wall-clock timings mean something."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) while ranking, then the module's previous mode: a model being trained stays so."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)
