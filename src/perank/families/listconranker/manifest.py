"""ListConRanker's manifest (see :mod:`perank.ranking.family`): ``listconranker`` and its two-stage runner."""

from __future__ import annotations

from perank.ranking.family import Family, RerankerEntry, RunnerEntry

FAMILY = Family(
    name="listconranker",
    rerankers=(
        RerankerEntry(
            "listconranker",
            "perank.families.listconranker.reranker:ListConRankerReranker",
            tiny=lambda fx: {"model_path": str(fx.peers_dir / "listconranker-tiny")},
        ),
    ),
    runners=(RunnerEntry("listconranker", "perank.families.listconranker.training.runner:ListConRankerRunner"),),
)
