"""The listwise-text family's manifest (see :mod:`perank.ranking.family`): RankGPT-style ``listwise-text``."""

from __future__ import annotations

from perank.ranking.family import Family, RerankerEntry

FAMILY = Family(
    name="listwise-text",
    rerankers=(
        RerankerEntry(
            "listwise-text",
            "perank.families.listwise_text.reranker:ListwiseTextReranker",
            tiny=lambda fx: {"lm": fx.language_model(), "window_size": 4, "step": 2, "max_new_tokens": 24},
        ),
    ),
)
