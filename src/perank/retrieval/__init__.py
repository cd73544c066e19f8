"""First-stage retrieval (BM25) for every dataset in the registry; see :mod:`perank.retrieval.api`.

Importing this package is cheap: bm25s, Pyserini and the JVM are only loaded by the backend that needs them.
"""

from __future__ import annotations

from perank.retrieval.api import (
    BACKENDS,
    RETRIEVERS,
    resolve_backend,
    retrieval_results_path,
    retrieve,
    run_retrieval,
    search_topics,
    trec_path_for,
)
from perank.retrieval.bm25s_backend import beir_passage_text, build_bm25s_index, load_or_build_bm25s_index
from perank.retrieval.java import JavaUnavailableError, ensure_java, java_problem

__all__ = [
    "BACKENDS",
    "RETRIEVERS",
    "JavaUnavailableError",
    "beir_passage_text",
    "build_bm25s_index",
    "ensure_java",
    "java_problem",
    "load_or_build_bm25s_index",
    "resolve_backend",
    "retrieval_results_path",
    "retrieve",
    "run_retrieval",
    "search_topics",
    "trec_path_for",
]
