"""DeAR's manifest (see :mod:`perank.ranking.family`): the listwise LoRA reranker ``dear`` and its fine-tuning
on teacher permutations, the runner ``listwise-sft`` (also ``--family dear``, the family's own name)."""

from __future__ import annotations

from perank.ranking.family import Family, RerankerEntry, RunnerEntry

FAMILY = Family(
    name="dear",
    rerankers=(
        RerankerEntry(
            "dear",
            "perank.families.dear.reranker:DearReranker",
            tiny=lambda fx: {
                "lm": fx.language_model(),
                "window_size": 4,
                "step": 2,
                "prompt": "repo",
                "max_new_tokens": 24,
            },
        ),
    ),
    runners=(RunnerEntry("listwise-sft", "perank.families.dear.training:ListwiseSFTRunner", aliases=("dear",)),),
)
