"""What every family's Trainer needs before writing its own checkpoint folder."""

from __future__ import annotations

import contextlib
from typing import Any


def gathered_for_save(trainer: Any) -> contextlib.AbstractContextManager[Any]:
    """A context in which the model's full parameters are present on every rank: under DeepSpeed ZeRO-3 they are
    partitioned and must be gathered to be saved; otherwise nothing needs doing."""
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None) if trainer.is_deepspeed_enabled else None
    if plugin is not None and getattr(plugin, "zero_stage", 0) == 3:
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(trainer.model.parameters()), modifier_rank=None)
    return contextlib.nullcontext()
