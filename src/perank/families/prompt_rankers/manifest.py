"""The prompt rankers' manifest (see :mod:`perank.ranking.family`): llm-rankers' ``llm-pointwise``,
``llm-pairwise`` and ``llm-setwise`` (aliases ``pointwise``, ``pairwise``, ``setwise``)."""

from __future__ import annotations

from perank.ranking.family import Family, RerankerEntry

_MODULE = "perank.families.prompt_rankers.reranker"

FAMILY = Family(
    name="prompt-rankers",
    rerankers=(
        RerankerEntry(
            "llm-pointwise",
            f"{_MODULE}:LLMPointwiseReranker",
            aliases=("pointwise",),
            tiny=lambda fx: {"lm": fx.language_model()},
        ),
        RerankerEntry(
            "llm-pairwise",
            f"{_MODULE}:LLMPairwiseReranker",
            aliases=("pairwise",),
            tiny=lambda fx: {"lm": fx.language_model()},
        ),
        RerankerEntry(
            "llm-setwise",
            f"{_MODULE}:LLMSetwiseReranker",
            aliases=("setwise",),
            tiny=lambda fx: {"lm": fx.language_model()},
        ),
    ),
)
