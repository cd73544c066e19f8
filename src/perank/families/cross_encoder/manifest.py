"""The cross-encoder family's manifest (see :mod:`perank.ranking.family`): ``cross-encoder`` (alias
``bge-reranker``) and its training runner."""

from __future__ import annotations

from perank.ranking.family import Family, RerankerEntry, RunnerEntry

FAMILY = Family(
    name="cross-encoder",
    rerankers=(
        RerankerEntry(
            "cross-encoder",
            "perank.families.cross_encoder.reranker:CrossEncoderReranker",
            aliases=("bge-reranker",),
            tiny=lambda fx: {"model_path": str(fx.peers_dir / "bge-reranker-tiny")},
        ),
    ),
    runners=(RunnerEntry("cross-encoder", "perank.families.cross_encoder.training:CrossEncoderRunner"),),
)
