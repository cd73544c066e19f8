"""The settings that shape a new PE-Rank model, in one place for every command that builds one.

``python -m perank.cli.assemble`` (an untrained model) and the training runner (``--family pe-rank``) both join
a base LLM and an encoder into a new model. They used to pass these settings to :meth:`PERankModel.build`
each on its own, and assemble lost ``relevance_feature`` on the way (so it could not assemble the shipped
model's shape). Now both build from :class:`PERankSettings`: the runner's ``ModelArguments`` inherits its
fields (``HfArgumentParser`` offers each as ``--name``), assemble makes its ``--name`` options from the same
fields (:func:`add_arguments`), and :meth:`PERankSettings.build_model` passes every field on. A setting added
here reaches both commands and the model.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

import torch

from perank.backends.encoder import POOLINGS
from perank.families.pe_rank.model import RELEVANCE_FEATURES, PERankModel
from perank.families.pe_rank.prompts import QUERY_EMBEDDING_POSITIONS

#: the allowed values of the settings that have a fixed set (assemble's options check them; the model too)
CHOICES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "encoder_pooling": POOLINGS,
        "query_embedding_position": QUERY_EMBEDDING_POSITIONS,
        "relevance_feature": RELEVANCE_FEATURES,
    }
)


@dataclass
class PERankSettings:
    """How a new PE-Rank model is shaped (the base LLM and encoder are named apart, as each command names
    them its own way). The help texts serve both commands' ``--help``."""

    encoder_pooling: str | None = field(
        default=None, metadata={"help": "mean, cls or last_token (default: the encoder's own)"}
    )
    encoder_max_length: int = field(default=256, metadata={"help": "encoder truncation, training and inference"})
    projector_type: str = field(default="mlp2x_gelu", metadata={"help": "linear or mlp{N}x_gelu"})
    query_embedding: bool = field(
        default=False, metadata={"help": "inject the query's own embedding as one more token (prompts.py)"}
    )
    query_embedding_position: str = field(
        default="prompt", metadata={"help": "prompt (after the query text) or answer (first answer token)"}
    )
    query_text: bool = field(
        default=True,
        metadata={"help": "the query's text in the prompt (leaving it out needs the query embedding; prompts.py)"},
    )
    relevance_feature: str = field(
        default="none",
        metadata={"help": "none, or cosine: each passage vector carries its query cosine (PERankModel.with_relevance)"},
    )

    def settings(self) -> dict[str, Any]:
        """Every setting by name; from a subclass (the runner's ``ModelArguments``) only these fields."""
        return {f.name: getattr(self, f.name) for f in fields(PERankSettings)}

    def build_model(
        self,
        llm_name: str,
        encoder_name: str,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
        seed: int | None = 0,
    ) -> PERankModel:
        """A new model (fresh projector, seeded) around ``llm_name`` and ``encoder_name``, shaped by every setting;
        the keywords say how it is loaded, not what it is."""
        return PERankModel.build(
            llm_name,
            encoder_name,
            **self.settings(),
            device=device,
            dtype=dtype,
            attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code,
            seed=seed,
        )

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> PERankSettings:
        """The settings :func:`add_arguments` parsed."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per setting, spelled with hyphens (``--relevance-feature``): a setting off by default is a
    switch (``--query-embedding``), one on by default is turned off (``--no-query-text``)."""
    for f in fields(PERankSettings):
        flag, text = "--" + f.name.replace("_", "-"), f.metadata["help"]
        if isinstance(f.default, bool):
            flag = flag if not f.default else "--no-" + flag[2:]
            action = "store_true" if not f.default else "store_false"
            parser.add_argument(flag, dest=f.name, action=action, help=text if not f.default else f"without {text}")
        else:
            kind = str if f.default is None else type(f.default)
            parser.add_argument(flag, dest=f.name, type=kind, default=f.default, choices=CHOICES.get(f.name), help=text)
