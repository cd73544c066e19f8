"""A run's progress file: each reranked query appended as it finishes, so a run never loses finished work.

Reranking with an LLM takes hours on a CPU, so the pipeline appends each reranked batch (fsynced) to the run's
progress file (:func:`perank.runs.partial_path`), whose first line is a header of the run's identity
(:meth:`perank.runs.RunIdentity.header`); a rerun with the same settings skips those queries. A crash can at worst
truncate the file's last line, which :func:`load_progress` then drops with a warning (that query is reranked
again; none is ever counted twice).

Every result is checked against its request (same docids, each once) before it is saved or read back,
so a buggy reranker fails loudly, naming the query and the document, instead of producing a run that
silently scores documents that were never candidates.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from perank.io import atomic_write
from perank.runs import comparable
from perank.types import Candidate, InputError, Request, Result

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def check_result(request: Request, result: Result) -> None:
    """Fail unless ``result`` ranks exactly the request's candidates, each once, with finite scores."""
    qid = request.query.qid
    if result.query.qid != qid:
        raise InputError(f"reranker returned query {result.query.qid} where {qid} was expected")
    expected = {c.docid for c in request.candidates}
    seen: set[str] = set()
    for cand in result.candidates:
        if cand.docid not in expected:
            raise InputError(f"query {qid}: docid {cand.docid} is not among the query's candidates")
        if cand.docid in seen:
            raise InputError(f"query {qid}: docid {cand.docid} ranked twice")
        seen.add(cand.docid)
        if not math.isfinite(float(cand.score)):
            raise InputError(f"query {qid}: docid {cand.docid} has a non-finite score {cand.score}")
    missing = expected - seen
    if missing:
        raise InputError(
            f"query {qid}: docid {sorted(missing)[0]} missing from the reranked list ({len(missing)} missing)"
        )


def progress_record(result: Result) -> dict[str, Any]:
    """The progress-file line of a finished query (no passage text: the candidates file has it)."""
    return {
        "qid": result.query.qid,
        "query": result.query.text,
        "hits": [{"docid": c.docid, "rank": r, "score": c.score} for r, c in enumerate(result.candidates, start=1)],
        "stats": result.stats,
    }


def append_progress(handle: IO[str], results: Sequence[Result]) -> None:
    """Append a batch's progress lines in one write, fsynced: a kill leaves the whole batch or none of it, so a
    resumed run never reranks half a batch in other company (batched kernels would see other inputs)."""
    handle.write("".join(json.dumps(progress_record(r), ensure_ascii=False) + "\n" for r in results))
    handle.flush()
    os.fsync(handle.fileno())


def _from_record(obj: Any, request: Request, where: str) -> Result:
    """Rebuild a result from a progress line, checking it against the current candidates."""
    try:
        texts = {c.docid: c.text for c in request.candidates}
        cands = [
            Candidate(docid=str(h["docid"]), text=texts.get(str(h["docid"]), ""), score=float(h["score"]), rank=r)
            for r, h in enumerate(obj["hits"], start=1)
        ]
        stats = dict(obj.get("stats") or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: not a progress record ({exc})") from exc
    result = Result(query=request.query, candidates=cands, stats=stats)
    try:
        check_result(request, result)
    except InputError as exc:
        raise InputError(
            f"{where}: {exc}; the progress file was made from other candidates, delete it to start over"
        ) from exc
    return result


def load_progress(path: PathLike, requests: Sequence[Request], header: dict[str, Any]) -> dict[str, Result]:
    """Finished queries from a progress file, keyed by qid (empty when there is no file).

    A truncated last line (a crash mid-write) is dropped with a warning and cut from the file so the next
    append starts on a fresh line; a bad line anywhere else, a header from different settings, or a query
    that is not in ``requests`` is an error, because silently mixing runs would corrupt the results.
    """
    path = Path(path)
    if not path.exists():
        return {}
    by_qid = {r.query.qid: r for r in requests}
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    done: dict[str, Result] = {}
    good: list[bytes] = []
    rewrite = not raw.endswith(b"\n") and last >= 0  # the next append must start on a fresh line
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"{path}:{i + 1}"
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if i == last:  # a write cut short by a crash
                logger.warning("%s: ignoring a truncated last line (a crash mid-write); its query is redone", where)
                rewrite = True
                continue
            raise InputError(f"{where}: malformed progress line ({exc})") from exc
        if isinstance(obj, dict) and "_header" in obj:
            if comparable(obj["_header"]) != comparable(header):
                raise InputError(
                    f"{where}: progress file was written with other settings ({obj['_header']}); "
                    "delete it or choose another --run-name"
                )
            good.append(line)
            continue
        qid = str(obj.get("qid")) if isinstance(obj, dict) else None
        if qid not in by_qid:
            raise InputError(f"{where}: query {qid} is not among this run's queries; delete the progress file")
        if qid in done:
            logger.warning("%s: query %s already recorded; keeping the first", where, qid)
            rewrite = True
            continue
        done[qid] = _from_record(obj, by_qid[qid], where)
        good.append(line)
    if rewrite:
        with atomic_write(path, "wb") as handle:
            handle.write(b"".join(line + b"\n" for line in good))
    return done


def progress_header(header: dict[str, Any]) -> dict[str, Any]:
    """The first line of a progress file: the run's settings, which a resumed run must match."""
    return {"_header": comparable(header)}
