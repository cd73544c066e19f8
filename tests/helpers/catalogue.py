"""The families' tiny configurations, by reranker name: parametrized tests read them while collecting."""

from __future__ import annotations

from perank.ranking.catalogue import catalogue
from perank.ranking.family import TinyOptions


def tiny_configurations() -> dict[str, TinyOptions]:
    """Reranker name (not alias) -> its manifest's tiny configuration, for every reranker that declares one."""
    return {entry.name: entry.tiny for family in catalogue().families for entry in family.rerankers if entry.tiny}


#: reranker name -> constructor options of its tiny configuration, given the tiny models (``tiny_fixtures``)
TINY = tiny_configurations()
