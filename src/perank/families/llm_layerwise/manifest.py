"""The layerwise LLM family's manifest (see :mod:`perank.ranking.family`): ``llm-layerwise`` (alias
``bge-reranker-minicpm-layerwise``)."""

from __future__ import annotations

from perank.ranking.family import Family, RerankerEntry

FAMILY = Family(
    name="llm-layerwise",
    rerankers=(
        RerankerEntry(
            "llm-layerwise",
            "perank.families.llm_layerwise.reranker:LLMLayerwiseReranker",
            aliases=("bge-reranker-minicpm-layerwise",),
            tiny=lambda fx: {"model_path": str(fx.peers_dir / "minicpm-layerwise-tiny")},
        ),
    ),
)
