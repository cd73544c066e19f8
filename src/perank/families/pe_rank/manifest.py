"""PE-Rank's manifest (see :mod:`perank.ranking.family`): ``pe-rank`` (alias ``listwise-embedding``), its
"w/ content" variant ``listwise-text-embedding``, and the two-stage training runner ``pe-rank``."""

from __future__ import annotations

from perank.ranking.family import Family, RerankerEntry, RunnerEntry

#: the contract test's small windows, so that 12 candidates take several
TINY_WINDOWS = {"window_size": 4, "step": 2}

FAMILY = Family(
    name="pe-rank",
    rerankers=(
        RerankerEntry(
            "pe-rank",
            "perank.families.pe_rank.reranker:PERankReranker",
            aliases=("listwise-embedding",),
            tiny=lambda fx: {"model": fx.pe_rank_model, **TINY_WINDOWS},
        ),
        RerankerEntry(
            "listwise-text-embedding",
            "perank.families.pe_rank.reranker:ListwiseTextEmbeddingReranker",
            tiny=lambda fx: {"model": fx.pe_rank_model, **TINY_WINDOWS},
        ),
    ),
    runners=(RunnerEntry("pe-rank", "perank.families.pe_rank.training.runner:PERankRunner"),),
)
