"""Retrieval results: one query and its first-stage hits per JSONL line, or rank_llm's JSON array of them.

``{"query": str, "hits": [{"content", "qid", "docid", "rank", "score"}]}`` is the PE-Rank layout. A docid that
appears twice in one query's hits keeps its first occurrence; the reader says so once per file, with the count
and the first few (file:line and docid), and ``strict=True`` refuses the file instead, naming the first.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from perank.io.fields import finite_float, json_line, parse_id
from perank.io.files import GZIP_ERRORS, PathLike, atomic_write, open_text, text_lines
from perank.types import Candidate, InputError, Query, Request, Result

logger = logging.getLogger(__name__)

#: how many repeated docids the one warning of a file names (the count covers them all)
SHOWN_DUPLICATES = 3


@dataclass
class Duplicates:
    """The docids repeated within a query's hits in one file: refused at the first when ``strict``, else kept
    to be reported by :meth:`report`, once for the whole file."""

    path: Path
    strict: bool = False
    found: list[str] = field(default_factory=list)

    def add(self, where: str, qid: str, docid: str, first: int, again: int) -> None:
        if self.strict:
            raise InputError(
                f"{where}: docid {docid} appears twice for query {qid} (hits {first} and {again}); remove one, or "
                "leave out --strict to keep the first"
            )
        at = where[len(str(self.path)) + 1 :].strip()  # "12" (a JSONL line) or "item 3" (a JSON array)
        self.found.append(f"{'line ' + at if at.isdigit() else at} docid {docid}")

    def report(self) -> None:
        """One warning with the count and the first few: the candidate count of those queries changed."""
        if not self.found:
            return
        n = len(self.found)
        more = f"; {n - SHOWN_DUPLICATES} more" if n > SHOWN_DUPLICATES else ""
        shown = "; ".join(self.found[:SHOWN_DUPLICATES]) + more
        logger.warning(
            "%s: %d docid%s repeated within a query's hits dropped, the first occurrence kept (%s); --strict "
            "refuses them",
            self.path,
            n,
            "" if n == 1 else "s",
            shown,
        )


def _request_from_obj(obj: Any, where: str, duplicates: Duplicates) -> Request:
    """Build a request from one ``{"query", "hits"}`` object, validating every field it needs."""
    if not isinstance(obj, dict) or "query" not in obj or "hits" not in obj:
        raise InputError(f"{where}: expected an object with 'query' and 'hits'")
    if not isinstance(obj["query"], str):
        raise InputError(f"{where}: 'query' must be a string")
    hits = obj["hits"]
    if not isinstance(hits, list):
        raise InputError(f"{where}: 'hits' must be a list")
    if not hits:
        raise InputError(f"{where}: empty hit list for query {obj['query']!r}; nothing to rerank")
    qid = None if obj.get("qid") is None else parse_id(obj["qid"], "qid", where)
    candidates: list[Candidate] = []
    seen: dict[str, int] = {}
    for i, hit in enumerate(hits):
        if not isinstance(hit, dict):
            raise InputError(f"{where}: hit {i} is not an object")
        missing = [k for k in ("docid", "content") if k not in hit]
        if missing:
            raise InputError(f"{where}: hit {i} lacks {', '.join(missing)}")
        if not isinstance(hit["content"], str):
            raise InputError(f"{where}: hit {i} 'content' must be a string")
        if hit.get("qid", qid) is None:
            raise InputError(f"{where}: hit {i} has no 'qid'")
        hit_qid = parse_id(hit.get("qid", qid), f"hit {i} qid", where)
        if qid is None:
            qid = hit_qid
        elif hit_qid != qid:
            raise InputError(f"{where}: hit {i} has qid {hit_qid!r}, expected {qid!r}")
        docid = parse_id(hit["docid"], f"hit {i} docid", where)
        if docid in seen:
            duplicates.add(where, str(qid), docid, seen[docid], i)
            continue
        seen[docid] = i
        score = finite_float(hit.get("score", 0.0), f"hit {i} score", where)
        rank = hit.get("rank", i + 1)
        if isinstance(rank, bool) or not isinstance(rank, int):
            raise InputError(f"{where}: hit {i} rank {rank!r} is not an integer")
        candidates.append(Candidate(docid=docid, text=hit["content"], score=score, rank=rank))
    return Request(query=Query(qid=str(qid), text=obj["query"]), candidates=candidates)


def request_to_obj(request: Request | Result) -> dict[str, Any]:
    """The JSON object of a request or result, in the retrieval-results layout."""
    return {
        "query": request.query.text,
        "hits": [
            {
                "content": c.text,
                "qid": request.query.qid,
                "docid": c.docid,
                "rank": rank,
                "score": c.score,
            }
            for rank, c in enumerate(request.candidates, start=1)
        ],
    }


def read_retrieval_results(path: PathLike, *, strict: bool = False) -> list[Request]:
    """Read retrieval results, either JSONL (one query a line) or a rank_llm-style JSON array. A docid repeated
    in a query's hits keeps its first occurrence, with one warning for the file; ``strict`` refuses it."""
    path = Path(path)
    first = ""
    for _, line in text_lines(path):
        if line.strip():
            first = line.lstrip()
            break
    if first.startswith("["):
        return read_rank_llm_json(path, strict=strict)
    requests: list[Request] = []
    seen_qids: set[str] = set()
    duplicates = Duplicates(path, strict)
    for lineno, line in text_lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        request = _request_from_obj(json_line(line, where), where, duplicates)
        if request.query.qid in seen_qids:
            raise InputError(f"{where}: query {request.query.qid} appears twice")
        seen_qids.add(request.query.qid)
        requests.append(request)
    if not requests:
        raise InputError(f"{path}: no queries in file")
    duplicates.report()
    return requests


def read_rank_llm_json(path: PathLike, *, strict: bool = False) -> list[Request]:
    """Read a JSON array of ``{"query", "hits"}`` objects, as rank_llm ships its BM25 results (repeated docids
    as in :func:`read_retrieval_results`)."""
    path = Path(path)
    try:
        with open_text(path) as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except RecursionError as exc:
        raise InputError(f"{path}: JSON nested too deeply") from exc
    except GZIP_ERRORS as exc:
        raise InputError(f"{path}: not a valid gzip file ({exc})") from exc
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON array of query objects")
    duplicates = Duplicates(path, strict)
    requests = [_request_from_obj(obj, f"{path}: item {i}", duplicates) for i, obj in enumerate(data)]
    duplicates.report()
    return requests


def write_retrieval_results(path: PathLike, requests: Iterable[Request | Result]) -> None:
    """Write requests (or results) as retrieval-results JSONL, atomically."""
    with atomic_write(path) as handle:
        for request in requests:
            handle.write(json.dumps(request_to_obj(request), ensure_ascii=False) + "\n")


def append_jsonl(handle: IO[str], obj: Any) -> None:
    """Append one JSON line and flush it to disk (used for resumable checkpoints of finished queries)."""
    handle.write(json.dumps(obj, ensure_ascii=False) + "\n")
    handle.flush()
    os.fsync(handle.fileno())
