"""The layerwise LLM family's manifest (see :mod:`perank.ranking.family`): ``llm-layerwise`` (alias
``bge-reranker-minicpm-layerwise``) and its training runner (LoRA and a head per layer on a causal LM)."""

from __future__ import annotations

from perank.ranking.family import Family, RerankerEntry, RunnerEntry

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
    runners=(RunnerEntry("llm-layerwise", "perank.families.llm_layerwise.training:LLMLayerwiseRunner"),),
)
