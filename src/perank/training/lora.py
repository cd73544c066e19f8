"""LoRA on a causal LM from the shared ``--lora_*`` flags (:class:`perank.training.arguments.LoraArguments`).

One function so that every LLM family reads the flags the same way: ``--lora_target_modules`` is a
comma-separated list of module names, or ``all-linear`` (peft's own shortcut for every linear layer but the
output head).
"""

from __future__ import annotations

from typing import Any

from perank.types import InputError


def lora_target_modules(spec: str) -> str | list[str]:
    """``'all-linear'`` as is, else the comma-separated names (an empty list is an error, not "no LoRA")."""
    if spec.strip() == "all-linear":
        return "all-linear"
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise InputError(f"--lora_target_modules {spec!r}: name at least one module (or 'all-linear')")
    return names


def apply_lora(model: Any, args: Any) -> Any:
    """``model`` wrapped in LoRA adapters per ``args`` (``lora_r``, ``lora_alpha``, ``lora_dropout``,
    ``lora_target_modules``); only the adapters are trainable afterwards."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=lora_target_modules(args.lora_target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)
