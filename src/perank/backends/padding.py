"""Rows of token ids of different lengths as one padded batch, and the value at each row's last real token.

Every in-process backend and the families that build their own tensors (FlagEmbedding's exact inputs) pad the
same way, so it is written once: :func:`pad_rows` pads on either side, optionally to a multiple of some width
as a tokenizer's ``pad_to_multiple_of`` does, and :func:`last_real` reads a per-position value where each row's
text ends (FlagEmbedding's ``last_logit_pool``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

PADDING_SIDES = ("left", "right")


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int, *, side: str = "left", multiple: int = 1) -> dict[str, Tensor]:
    """``input_ids`` and ``attention_mask`` (CPU, long) for ``rows`` padded on ``side`` to the longest row,
    rounded up to a multiple of ``multiple``."""
    if side not in PADDING_SIDES:
        raise ValueError(f"padding side {side!r}: choose left or right")
    longest = max((len(r) for r in rows), default=0)
    width = -(-longest // multiple) * multiple
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
            ids[i, span] = torch.tensor(list(row), dtype=torch.long)
            mask[i, span] = 1
    return {"input_ids": ids, "attention_mask": mask}


def last_real(values: Tensor, attention_mask: Tensor) -> Tensor:
    """``values[:, t]`` at each row's last real token: column -1 when every row ends with a real token (left
    padding), else position ``mask.sum() - 1``."""
    if bool((attention_mask[:, -1] == 1).all()):
        return values[:, -1]
    last = attention_mask.sum(dim=1) - 1
    return values[torch.arange(values.shape[0], device=values.device), last.to(values.device)]
