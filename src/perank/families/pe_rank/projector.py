"""The projector: maps a passage embedding into the LLM's input-embedding space.

``linear`` is one Linear layer; ``mlp{N}x_gelu`` (LLaVA's naming; PE-Rank uses ``mlp2x_gelu``) is N Linear
layers with GELU between them. Module indices match the original's ``nn.Sequential`` so that the released
checkpoint's ``projector.0.*`` / ``projector.2.*`` keys load as they are.
"""

from __future__ import annotations

import re

from torch import nn


def build_projector(projector_type: str, embedding_size: int, hidden_size: int) -> nn.Module:
    """Build a projector from its type name; an unknown name is an error that lists the accepted forms."""
    if projector_type == "linear":
        return nn.Sequential(nn.Linear(embedding_size, hidden_size))
    match = re.fullmatch(r"mlp(\d+)x_gelu", projector_type)
    if match and int(match.group(1)) >= 1:
        depth = int(match.group(1))
        layers: list[nn.Module] = [nn.Linear(embedding_size, hidden_size)]
        for _ in range(1, depth):
            layers += [nn.GELU(), nn.Linear(hidden_size, hidden_size)]
        return nn.Sequential(*layers)
    raise ValueError(f"unknown projector type {projector_type!r}; use 'linear' or 'mlp{{N}}x_gelu'")
