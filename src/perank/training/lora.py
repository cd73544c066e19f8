"""LoRA from the shared ``--lora_*`` flags (:class:`perank.training.arguments.LoraArguments`): on a causal LM
(:func:`apply_lora`) or on a sentence-transformers embedder (:func:`apply_embedder_lora`).

One place so that every family reads the flags the same way: ``--lora_target_modules`` is a comma-separated list
of module names, or ``all-linear`` (peft's own shortcut for every linear layer but the output head; for an
embedder, which is no ``PreTrainedModel`` and which peft therefore cannot expand it for, it is expanded here).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from perank.types import InputError

#: linear layers an embedder computes but never reads: BERT's pooler feeds no sentence-transformers pooling
UNREAD_LINEAR_LAYERS = ("pooler",)


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


def embedder_linear_layers(model: nn.Module) -> list[str]:
    """The full names of ``model``'s linear layers, those it never reads (:data:`UNREAD_LINEAR_LAYERS`) left out:
    an adapter on them would stay at zero and only take space."""
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and not any(part in UNREAD_LINEAR_LAYERS for part in name.split("."))
    ]


def apply_embedder_lora(model: nn.Module, args: Any, base_name: str) -> Any:
    """A sentence-transformers ``model`` wrapped in LoRA adapters per ``args`` (as :func:`apply_lora`), only the
    adapters trainable; the adapter config names ``base_name`` (an alias such as ``all-minilm-l6-v2`` rather than
    this machine's folder), which :func:`perank.backends.sentence_embedder.load_sentence_transformer` loads the
    saved adapter onto. ``all-linear`` is every linear layer the model reads."""
    from peft import LoraConfig, get_peft_model

    targets = lora_target_modules(args.lora_target_modules)
    if targets == "all-linear":
        targets = embedder_linear_layers(model)
    config = LoraConfig(
        r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, target_modules=targets
    )
    try:
        wrapped = get_peft_model(model, config)
    except ValueError as exc:  # no module of that name
        raise InputError(f"--lora_target_modules {args.lora_target_modules!r}: {exc}") from exc
    wrapped.peft_config["default"].base_model_name_or_path = base_name
    return wrapped
