"""The jina-listwise family's manifest (see :mod:`perank.ranking.family`): the reranker ``jina-listwise`` and its
training runner."""

from __future__ import annotations

from perank.ranking.family import Family, RerankerEntry, RunnerEntry

FAMILY = Family(
    name="jina-listwise",
    rerankers=(
        RerankerEntry(
            "jina-listwise",
            "perank.families.jina_listwise.reranker:JinaListwiseReranker",
            # blocks of 5 so that the contract's 7- and 12-candidate lists take several prompts
            tiny=lambda fx: {"model_path": str(fx.peers_dir / "jina-v3-tiny"), "block_size": 5, "device": "cpu"},
        ),
    ),
    runners=(RunnerEntry("jina-listwise", "perank.families.jina_listwise.training.runner:JinaListwiseRunner"),),
)
