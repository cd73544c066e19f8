"""Keeping the test set out of training data: the guards every training-data builder applies.

DL19 is the held-out test of the small models. A builder refuses a query whose qid is judged in a
``--forbid-qrels`` file, and a query whose text equals a held-out topic's (the same question can come back
under another qid, e.g. from a mixed topic set). Text equality ignores case and surrounding whitespace. A training
runner that reads rows rather than candidate lists (``--family e2rank``) applies the same checks to their queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from perank.datasets import get_dataset
from perank.io import read_qrels, read_topics
from perank.types import InputError, Query, Request


def query_text_key(text: str) -> str:
    """The form in which two query texts are compared (case and surrounding whitespace ignored)."""
    return text.strip().lower()


def held_out_texts(topics_paths: Iterable[str | Path]) -> set[str]:
    """The comparison keys of every topic in these topics files."""
    return {query_text_key(t) for path in topics_paths for t in read_topics(path).values()}


def dl19_topics_path() -> Path | None:
    """The shipped DL19 topics file, or None when this checkout does not have it."""
    path = get_dataset("dl19").local("topics_file")
    return path if path is not None and path.exists() else None


def dl19_qrels_path() -> Path | None:
    """The shipped DL19 qrels file, or None when this checkout does not have it."""
    path = get_dataset("dl19").local("qrels_file")
    return path if path is not None and path.exists() else None


def refuse_judged(requests: list[Request], qrels_path: str | Path) -> None:
    """InputError when any request's qid is judged in ``qrels_path`` (build_rank_data's ``--forbid-qrels``)."""
    refuse_judged_queries([r.query for r in requests], qrels_path)


def refuse_judged_queries(queries: Sequence[Query], qrels_path: str | Path) -> None:
    """InputError when any query's qid is judged in ``qrels_path`` (what a training runner reads: rows, not
    candidate lists)."""
    banned = set(read_qrels(qrels_path))
    leaked = sorted({q.qid for q in queries} & banned)
    if leaked:
        raise InputError(f"refusing: {len(leaked)} queries are judged in {qrels_path} (e.g. {leaked[:5]})")


def refuse_held_out_texts(requests: list[Request], texts: set[str], source: str | Path) -> None:
    """InputError naming ``source`` and the first query whose text is a held-out topic's."""
    refuse_held_out_query_texts([r.query for r in requests], texts, source)


def refuse_held_out_query_texts(queries: Sequence[Query], texts: set[str], source: str | Path) -> None:
    """InputError naming ``source`` and the first of ``queries`` whose text is a held-out topic's."""
    leaked = [q for q in queries if query_text_key(q.text) in texts]
    if leaked:
        first = leaked[0]
        raise InputError(
            f"refusing {source}: {len(leaked)} queries have the text of a held-out (DL19) topic "
            f"(e.g. query {first.qid}: {first.text!r})"
        )
