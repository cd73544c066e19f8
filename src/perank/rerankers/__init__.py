"""Importing this package registers every reranker family (each module's ``@register`` runs on import)."""

# One import per line so that families can be added without touching each other's lines.
# ruff: noqa: I001
from perank.rerankers import dense  # noqa: F401
from perank.rerankers import identity  # noqa: F401
from perank.rerankers import pe_rank  # noqa: F401
from perank.rerankers import listwise_text  # noqa: F401
