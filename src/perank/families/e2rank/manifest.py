"""The E2Rank family's manifest (see :mod:`perank.ranking.family`): the reranker ``e2rank`` and its training runner."""

from __future__ import annotations

from perank.ranking.family import Family, RerankerEntry, RunnerEntry

FAMILY = Family(
    name="e2rank",
    rerankers=(
        RerankerEntry(
            "e2rank",
            "perank.families.e2rank.reranker:E2RankReranker",
            tiny=lambda fx: {"model_path": str(fx.peers_dir / "e2rank-qwen3-tiny"), "k": 3, "device": "cpu"},
        ),
    ),
    runners=(RunnerEntry("e2rank", "perank.families.e2rank.training.runner:E2RankRunner"),),
)
