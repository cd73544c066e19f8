"""The identity family's manifest (see :mod:`perank.ranking.family`): the reranker ``identity``, no model."""

from __future__ import annotations

from perank.ranking.family import Family, RerankerEntry

FAMILY = Family(
    name="identity",
    rerankers=(RerankerEntry("identity", "perank.families.identity.reranker:IdentityReranker", tiny=lambda fx: {}),),
)
