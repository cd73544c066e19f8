"""The one place where GPU-only training settings are turned off on a machine without a GPU.

The original commands ask for bf16, tf32 and flash-attention 2. On CPU those would fail (tf32, flash-attention)
or crawl (bf16 matmuls are several times slower than fp32 there), so rather than failing an hour into a job
they are downgraded, each with a warning, and the same command runs on a laptop.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

logger = logging.getLogger("perank.train")


def on_cpu(training_args: Any) -> bool:
    """True when the run will not use a CUDA GPU (``--use_cpu``, or none is visible)."""
    return bool(training_args.use_cpu) or not torch.cuda.is_available()


def downgrade_for_cpu(training_args: Any, model_args: Any | None = None) -> None:
    """On CPU: bf16/fp16 -> fp32, tf32 off, and (with ``model_args``) flash_attention_2 -> sdpa, loudly.

    Idempotent, so it can run twice: once from ``TrainingArguments.__post_init__`` (before transformers
    rejects bf16/tf32 on CPU) and once from the runner, which also has the model arguments.
    """
    if not on_cpu(training_args):
        return
    if training_args.bf16 or training_args.fp16:
        logger.warning("bf16/fp16 requested on CPU: training in fp32 instead (bf16 is several times slower here)")
        training_args.bf16 = training_args.fp16 = False
    if training_args.tf32:
        logger.warning("tf32 requested on CPU: ignored (it is an Ampere GPU setting)")
        training_args.tf32 = None
    if model_args is not None and getattr(model_args, "attn_implementation", None) == "flash_attention_2":
        logger.warning("flash_attention_2 needs a CUDA GPU: using sdpa instead")
        model_args.attn_implementation = "sdpa"
