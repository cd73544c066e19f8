"""Checking what callers of the Python API hand a reranker, as the file readers check what files hold.

A ``None``, a number or a list where a text belongs would otherwise be turned into some text (``str(None)``) and
ranked, or fail deep in a tokenizer with an error that names nothing. Every check here raises an
:class:`~perank.types.InputError` that names the argument and the position (``docs[3]``,
``requests[0].candidates[2].text``, ``pairs[1][0]``). A string that cannot be encoded as UTF-8 (a lone surrogate,
which no file can hold but Python code can build) is refused too, since every tokenizer would fail on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from perank.types import Candidate, InputError, Query, Request

#: what ``docs`` may be: a list (or tuple) of texts or Candidates
DOC_SEQUENCES = (list, tuple)


def check_text(value: Any, where: str) -> str:
    """``value`` if it is a text that every tokenizer can read, else an :class:`InputError` naming ``where``."""
    if not isinstance(value, str):
        raise InputError(f"{where}: expected a text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{where}: not valid Unicode text (lone surrogate U+{ord(value[exc.start]):04X} at position {exc.start})"
        ) from exc
    return value


def check_id(value: Any, where: str) -> str:
    """A query or document id: a non-empty string without whitespace (TREC files could not hold anything else)."""
    if not isinstance(value, str) or not value.strip() or any(ch.isspace() for ch in value):
        shown = repr(value) if isinstance(value, str) and len(value) <= 40 else type(value).__name__
        raise InputError(f"{where}: expected a non-empty id without whitespace, got {shown}")
    return value


def check_candidate(cand: Any, where: str) -> None:
    """A :class:`Candidate` with a text, an id and a finite score."""
    if not isinstance(cand, Candidate):
        raise InputError(f"{where}: expected a Candidate, got {type(cand).__name__}")
    check_text(cand.text, f"{where}.text")
    check_id(cand.docid, f"{where}.docid")
    score = cand.score
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise InputError(f"{where}.score: expected a finite number, got {score!r}")


def check_requests(requests: Any) -> None:
    """Every request of a batch: a :class:`Request` whose query and candidates are checked, each docid once."""
    if not isinstance(requests, list | tuple):
        raise InputError(f"requests: expected a list of Request, got {type(requests).__name__}")
    for i, request in enumerate(requests):
        where = f"requests[{i}]"
        if not isinstance(request, Request):
            raise InputError(f"{where}: expected a Request, got {type(request).__name__}")
        if not isinstance(request.query, Query):
            raise InputError(f"{where}.query: expected a Query, got {type(request.query).__name__}")
        check_text(request.query.text, f"{where}.query.text")
        check_id(request.query.qid, f"{where}.query.qid")
        if not isinstance(request.candidates, list):
            raise InputError(f"{where}.candidates: expected a list, got {type(request.candidates).__name__}")
        first: dict[str, int] = {}
        for j, cand in enumerate(request.candidates):
            check_candidate(cand, f"{where}.candidates[{j}]")
            if cand.docid in first:
                raise InputError(
                    f"{where}.candidates[{j}]: docid {cand.docid!r} repeats candidates[{first[cand.docid]}]"
                )
            first[cand.docid] = j


def make_request(query: Any, docs: Any, qid: Any = "q") -> Request:
    """A :class:`Request` from a query text (or :class:`Query`) and a list of texts (or :class:`Candidate`
    objects, whose docids must then be distinct); anything else is an :class:`InputError` naming the argument."""
    if isinstance(docs, str) or not isinstance(docs, DOC_SEQUENCES):
        what = "one string" if isinstance(docs, str) else type(docs).__name__
        raise InputError(f"docs: expected a list of texts or Candidates, not {what}")
    if isinstance(query, Query):
        check_text(query.text, "query.text")
        check_id(query.qid, "query.qid")
        q = query
    else:
        if not isinstance(query, str):
            raise InputError(f"query: expected a text or a Query, got {type(query).__name__}")
        q = Query(qid=check_id(qid, "qid"), text=check_text(query, "query"))
    candidates: list[Candidate] = []
    first: dict[str, int] = {}  # texts take their positions as ids, which a Candidate's id may repeat
    for i, doc in enumerate(docs):
        if isinstance(doc, Candidate):
            check_candidate(doc, f"docs[{i}]")
            cand = doc
        elif isinstance(doc, str):
            cand = Candidate(docid=str(i), text=check_text(doc, f"docs[{i}]"), score=0.0, rank=i + 1)
        else:
            raise InputError(f"docs[{i}]: expected a text or a Candidate, got {type(doc).__name__}")
        if cand.docid in first:
            raise InputError(f"docs[{i}]: docid {cand.docid!r} repeats docs[{first[cand.docid]}]")
        first[cand.docid] = i
        candidates.append(cand)
    return Request(query=q, candidates=candidates)


def check_pairs(pairs: Any) -> list[tuple[str, str]]:
    """``compute_score``'s argument as a list of ``(query, passage)`` texts: one pair or a list of pairs."""
    # a 2-tuple of anything but pairs is one pair: (None, "p") is refused as pairs[0][0], not as two bad pairs
    single = isinstance(pairs, tuple) and len(pairs) == 2 and not any(isinstance(x, list | tuple) for x in pairs)
    if single:
        items: Sequence[Any] = [pairs]
    elif isinstance(pairs, str) or not isinstance(pairs, DOC_SEQUENCES):
        raise InputError(f"pairs: expected a (query, passage) pair or a list of them, got {type(pairs).__name__}")
    else:
        items = pairs
    out = []
    for i, pair in enumerate(items):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            shown = f"{len(pair)} items" if isinstance(pair, list | tuple) else type(pair).__name__
            raise InputError(f"pairs[{i}]: expected a (query, passage) pair of two texts, got {shown}")
        out.append((check_text(pair[0], f"pairs[{i}][0] (query)"), check_text(pair[1], f"pairs[{i}][1] (passage)")))
    return out
