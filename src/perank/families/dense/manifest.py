"""The dense family's manifest (see :mod:`perank.ranking.family`): the bi-encoder reranker ``dense``."""

from __future__ import annotations

from perank.ranking.family import Family, RerankerEntry

FAMILY = Family(
    name="dense",
    rerankers=(
        RerankerEntry(
            "dense",
            "perank.families.dense.reranker:DenseReranker",
            tiny=lambda fx: {"model_path": str(fx.encoder_dir), "device": "cpu"},
        ),
    ),
)
