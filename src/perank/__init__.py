"""perank: PE-Rank and the reranker families it is compared with, behind one API.

``from perank import Reranker; Reranker("pe-rank").rank(query, docs)``; see :mod:`perank.api`.
Importing the package is cheap: models and torch load when a reranker is built.
"""

from perank.api import Reranker, list_rerankers
from perank.types import Candidate, InputError, Query, Request, Result

__all__ = ["Candidate", "InputError", "Query", "Reranker", "Request", "Result", "list_rerankers"]
