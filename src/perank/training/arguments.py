"""Argument dataclasses every training family shares (parsed with ``HfArgumentParser``).

A family's own dataclasses inherit these, so the shared flags keep one name, one default and one meaning
across families: the LLM loading flags, the LoRA flags, and the run-level flags the original commands pass
but transformers 5 no longer knows (``--evaluation_strategy``, ``--warmup_ratio``, ``--overwrite_output_dir``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import transformers

from perank.training.hardware import downgrade_for_cpu
from perank.types import InputError


@dataclass
class BackboneArguments:
    """How the backbone model is loaded."""

    attn_implementation: str | None = field(default=None, metadata={"help": "sdpa, eager or flash_attention_2"})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "run a model's own code from the hub (e.g. jina v2 encoders)"}
    )


@dataclass
class LoraArguments:
    """LoRA on a causal LM (:func:`perank.training.lora.apply_lora`)."""

    lora_enable: bool = field(default=False, metadata={"help": "train LoRA adapters instead of the full LLM"})
    lora_r: int = 64
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: str = field(
        default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
        metadata={"help": "comma-separated module names (or 'all-linear')"},
    )


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    """``transformers.TrainingArguments`` plus the original commands' legacy flags, CPU-safe."""

    overwrite_output_dir: bool = field(default=False, metadata={"help": "do not resume from output_dir"})
    evaluation_strategy: str | None = field(default=None, metadata={"help": "legacy alias of eval_strategy"})
    warmup_ratio: float | None = field(
        default=None, metadata={"help": "legacy: warmup as a fraction of the steps (now a warmup_steps below 1)"}
    )

    def __post_init__(self) -> None:
        # before transformers validates them: on CPU, GPU-only precision settings are downgraded, not fatal
        downgrade_for_cpu(self)
        if self.evaluation_strategy is not None:
            self.eval_strategy = self.evaluation_strategy
        if self.warmup_ratio is not None:
            self.warmup_steps = legacy_warmup(self.warmup_ratio, self.warmup_steps)
        super().__post_init__()


def legacy_warmup(ratio: float, warmup_steps: float) -> float:
    """``--warmup_ratio R`` as transformers 5 spells it: ``warmup_steps`` R (a value below 1 is a fraction)."""
    if not 0 <= ratio < 1:
        raise InputError(f"--warmup_ratio {ratio}: must be at least 0 and below 1")
    if warmup_steps:
        raise InputError(f"--warmup_ratio {ratio} and --warmup_steps {warmup_steps}: pass one of them")
    return ratio
