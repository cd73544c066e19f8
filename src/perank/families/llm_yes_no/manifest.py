"""The LLM yes/no family's manifest (see :mod:`perank.ranking.family`): ``llm-yes-no`` (alias
``bge-reranker-gemma``) and its LoRA training runner."""

from __future__ import annotations

from perank.ranking.family import Family, RerankerEntry, RunnerEntry

FAMILY = Family(
    name="llm-yes-no",
    rerankers=(
        RerankerEntry(
            "llm-yes-no",
            "perank.families.llm_yes_no.reranker:LLMYesNoReranker",
            aliases=("bge-reranker-gemma",),
            tiny=lambda fx: {"model_path": str(fx.peers_dir / "bge-gemma-tiny")},
        ),
    ),
    runners=(RunnerEntry("llm-yes-no", "perank.families.llm_yes_no.training:LLMYesNoRunner"),),
)
