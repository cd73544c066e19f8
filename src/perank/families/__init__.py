"""The reranker families, one module or folder each; importing this package registers every one of them.

A family is a room: its model, loading, prompts and ranking policy live together in its module or folder and
register themselves with :func:`perank.ranking.registry.register`. What families share lives below them:
the ranking strategies in :mod:`perank.ranking`, model loading and running in :mod:`perank.backends`.
"""

# One import per line so that families can be added without touching each other's lines.
# ruff: noqa: I001
import perank.families.identity  # noqa: F401
import perank.families.dense  # noqa: F401
import perank.families.pe_rank.reranker  # noqa: F401
import perank.families.listwise_text.reranker  # noqa: F401
import perank.families.cross_encoder.reranker  # noqa: F401
import perank.families.colbert.reranker  # noqa: F401
import perank.families.listconranker.reranker  # noqa: F401
import perank.families.llm_yes_no.reranker  # noqa: F401
import perank.families.llm_layerwise.reranker  # noqa: F401
import perank.families.dear.reranker  # noqa: F401
import perank.families.prompt_rankers  # noqa: F401
import perank.families.e2rank.reranker  # noqa: F401
