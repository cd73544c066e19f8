"""The built-in reranker families, one package each, every package laid out alike.

A family is a room: its model, loading, prompts and ranking policy live together in its package, which holds
``manifest.py`` (``FAMILY``: what it registers, see :mod:`perank.ranking.family`), ``reranker.py`` (its reranker
classes), ``model.py`` where it has a model of its own, and ``training.py`` or ``training/`` where it can be
trained. What families share lives below them: the ranking strategies in :mod:`perank.ranking`, model loading
and running in :mod:`perank.backends`. Importing this package imports no family: :mod:`perank.ranking.catalogue`
reads :data:`PACKAGES` and imports each manifest, and a reranker's or runner's module only when it is asked for.
"""

#: the built-in family packages, one per line (installed packages add theirs by entry point; see
#: :mod:`perank.ranking.catalogue`)
PACKAGES: tuple[str, ...] = (
    "identity",
    "dense",
    "e2rank",
    "jina_listwise",
    "pe_rank",
    "listwise_text",
    "cross_encoder",
    "colbert",
    "listconranker",
    "llm_yes_no",
    "llm_layerwise",
    "dear",
    "prompt_rankers",
)
