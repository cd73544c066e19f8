"""Loading a plain Hugging Face causal LM (name, packaged alias or folder) for the LLM families."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from perank.backends.resolve import resolve_model
from perank.backends.runtime import default_attn_implementation, default_dtype


def load_causal_lm(
    model_path: str,
    *,
    device: torch.device,
    dtype: torch.dtype | None = None,
    trust_remote_code: bool = False,
) -> tuple[nn.Module, Any]:
    """``(llm, tokenizer)`` on ``device`` in ``dtype`` (default: the device's)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = resolve_model(model_path)
    tokenizer = AutoTokenizer.from_pretrained(local, trust_remote_code=trust_remote_code)
    llm = AutoModelForCausalLM.from_pretrained(
        local,
        dtype=dtype or default_dtype(device),
        attn_implementation=default_attn_implementation(device),
        trust_remote_code=trust_remote_code,
    ).to(device)
    return llm, tokenizer
