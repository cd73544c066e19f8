"""The ColBERT family's manifest (see :mod:`perank.ranking.family`): ``colbert`` and its training runner."""

from __future__ import annotations

from perank.ranking.family import Family, RerankerEntry, RunnerEntry

FAMILY = Family(
    name="colbert",
    rerankers=(
        RerankerEntry(
            "colbert",
            "perank.families.colbert.reranker:ColbertReranker",
            tiny=lambda fx: {"model_path": str(fx.peers_dir / "bge-m3-tiny")},
        ),
    ),
    runners=(RunnerEntry("colbert", "perank.families.colbert.training:ColbertRunner"),),
)
