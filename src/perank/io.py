"""Readers and writers for every file format the toolkit exchanges.

One module owns the formats so that the pipeline, the training-data builders and the scripts all read
and write them the same way:

- retrieval results JSONL: ``{"query": str, "hits": [{"content", "qid", "docid", "rank", "score"}]}``,
  one line per query (the PE-Rank layout);
- rank_llm-style JSON arrays of the same objects (read, and convertible to JSONL);
- TREC run files: ``qid Q0 docid rank score tag`` with scores strictly decreasing within a query;
- TREC qrels and topics (read).

Every write is atomic (a temporary file in the same folder, then ``os.replace``) so an interrupted run
never leaves a half-written file behind. Every read error is an :class:`~perank.types.InputError`
naming the file and the line.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from perank.types import Candidate, InputError, Query, Request, Result

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------------------


@contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` and move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name: a later write can tell a killed writer's leftover from a live one's
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs = {"encoding": encoding} if "b" not in mode else {}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; give the result the permissions a plain open() would have
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    remove_orphaned_temps(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_orphaned_temps(path: Path) -> None:
    """Delete the temporary files of ``path`` left by writers that were killed mid-write (SIGKILL skips the
    cleanup above); files of writers still running on this machine are kept."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with suppress(FileNotFoundError):
                tmp.unlink()


#: what reading a damaged or mislabelled ``.gz`` file raises
GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def _open_text(path: PathLike) -> IO[str]:
    """Open a text file (gzip when the name ends in .gz) and fail with a clear message if it is missing."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _open_binary(path: PathLike) -> IO[bytes]:
    """Open a file for reading bytes (gunzipping ``.gz``); a clear error if it is missing."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """Yield (line number, line) and turn a decoding failure into an error naming the line.

    Lines are read as bytes and decoded one by one: a text-mode reader decodes ahead in 8 KiB chunks,
    so its error would name whichever line happened to trigger the chunk rather than the bad one.
    """
    lineno = 0
    try:
        with _open_binary(path) as handle:
            for lineno, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(f"{path}:{lineno}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
                if line.endswith("\r\n"):
                    line = line[:-2] + "\n"
                yield lineno, line
    except GZIP_ERRORS as exc:
        raise InputError(f"{path}:{lineno + 1}: not a valid gzip file ({exc})") from exc


# --------------------------------------------------------------------------------------------------
# retrieval results (JSONL and rank_llm JSON)
# --------------------------------------------------------------------------------------------------


def finite_float(value: Any, what: str, where: str) -> float:
    """``value`` as a finite float, or an :class:`InputError` naming ``what`` and ``where``: a NaN or infinite
    score would sort anywhere (trec_eval and every ranking sort treat it arbitrarily), so none is ever read."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(f"{where}: {what} {value!r} is not a number")
    try:
        number = float(value)
    except (ValueError, OverflowError) as exc:
        raise InputError(f"{where}: {what} {value!r} is not a number") from exc
    if not math.isfinite(number):
        raise InputError(f"{where}: {what} {value!r} is not finite")
    return number


def _id(value: Any, what: str, where: str) -> str:
    """A query or document id: a non-empty string or an integer (JSON numbers are common for ids)."""
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        raise InputError(f"{where}: {what} {value!r} is not a string or integer id")
    if isinstance(value, str) and any(ch.isspace() for ch in value):
        raise InputError(f"{where}: {what} {value!r} contains whitespace (TREC files could not hold it)")
    return str(value)


def _request_from_obj(obj: Any, where: str) -> Request:
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
    qid = None if obj.get("qid") is None else _id(obj["qid"], "qid", where)
    candidates: list[Candidate] = []
    seen: set[str] = set()
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
        hit_qid = _id(hit.get("qid", qid), f"hit {i} qid", where)
        if qid is None:
            qid = hit_qid
        elif hit_qid != qid:
            raise InputError(f"{where}: hit {i} has qid {hit_qid!r}, expected {qid!r}")
        docid = _id(hit["docid"], f"hit {i} docid", where)
        if docid in seen:
            logger.warning("%s: duplicate docid %s for query %s dropped", where, docid, qid)
            continue
        seen.add(docid)
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


def json_line(line: str, where: str) -> Any:
    """One JSON value; malformed (or absurdly nested) JSON is an error naming the line."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from exc
    except RecursionError as exc:
        raise InputError(f"{where}: JSON nested too deeply") from exc


def read_retrieval_results(path: PathLike) -> list[Request]:
    """Read retrieval results, either JSONL (one query a line) or a rank_llm-style JSON array."""
    path = Path(path)
    first = ""
    for _, line in _lines(path):
        if line.strip():
            first = line.lstrip()
            break
    if first.startswith("["):
        return read_rank_llm_json(path)
    requests: list[Request] = []
    seen_qids: set[str] = set()
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        request = _request_from_obj(json_line(line, where), where)
        if request.query.qid in seen_qids:
            raise InputError(f"{where}: query {request.query.qid} appears twice")
        seen_qids.add(request.query.qid)
        requests.append(request)
    if not requests:
        raise InputError(f"{path}: no queries in file")
    return requests


def read_rank_llm_json(path: PathLike) -> list[Request]:
    """Read a JSON array of ``{"query", "hits"}`` objects, as rank_llm ships its BM25 results."""
    path = Path(path)
    try:
        with _open_text(path) as handle:
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
    return [_request_from_obj(obj, f"{path}: item {i}") for i, obj in enumerate(data)]


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


# --------------------------------------------------------------------------------------------------
# TREC runs, qrels, topics
# --------------------------------------------------------------------------------------------------


def strictly_decreasing(scores: list[float]) -> list[float]:
    """Nudge ties (and any increase) down so scores strictly decrease while keeping the given order.

    Rerankers return real scores; ties are possible (equal cosine, repeated values), and trec_eval
    re-sorts by score, so a tie could silently reorder a ranking. The nudge is the smallest float step.
    """
    out: list[float] = []
    for s in scores:
        s = float(s)
        if not math.isfinite(s):
            raise ValueError(f"score {s} is not finite")
        if out and s >= out[-1]:
            s = math.nextafter(out[-1], -math.inf)
        out.append(s)
    return out


def write_trec_run(path: PathLike, results: Iterable[Result | Request], tag: str = "perank") -> None:
    """Write a TREC run file (``qid Q0 docid rank score tag``), scores strictly decreasing per query.

    Scores are written at full precision (``repr``): the one-step tie nudges would vanish when rounded.
    """
    with atomic_write(path) as handle:
        for result in results:
            scores = strictly_decreasing([c.score for c in result.candidates])
            for rank, (cand, score) in enumerate(zip(result.candidates, scores), start=1):
                handle.write(f"{result.query.qid} Q0 {cand.docid} {rank} {score!r} {tag}\n")


def read_trec_run(path: PathLike) -> dict[str, dict[str, float]]:
    """Read a TREC run into ``{qid: {docid: score}}`` (the shape pytrec_eval takes)."""
    run: dict[str, dict[str, float]] = {}
    for lineno, line in _lines(path):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise InputError(f"{path}:{lineno}: expected 'qid Q0 docid rank score tag', got {len(parts)} fields")
        qid, _, docid, _, score, _ = parts
        value = finite_float(score, "score", f"{path}:{lineno}")
        docs = run.setdefault(qid, {})
        if docid in docs:
            raise InputError(f"{path}:{lineno}: docid {docid} appears twice for query {qid}")
        docs[docid] = value
    if not run:
        raise InputError(f"{path}: empty run file")
    return run


def read_qrels(path: PathLike) -> dict[str, dict[str, int]]:
    """Read TREC qrels (``qid iter docid grade``) or BEIR TSV qrels (``query-id corpus-id score`` with header)."""
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in _lines(path):
        parts = line.split()
        if not parts:
            continue
        if lineno == 1 and parts[0] in {"query-id", "qid"}:
            continue  # BEIR TSV header
        if len(parts) == 4:
            qid, _, docid, grade = parts
        elif len(parts) == 3:
            qid, docid, grade = parts
        else:
            raise InputError(f"{path}:{lineno}: expected 'qid 0 docid grade', got {len(parts)} fields")
        try:
            qrels.setdefault(qid, {})[docid] = int(grade)
        except ValueError as exc:
            raise InputError(f"{path}:{lineno}: grade {grade!r} is not an integer") from exc
    if not qrels:
        raise InputError(f"{path}: no judgments in qrels file")
    return qrels


def read_topics(path: PathLike) -> dict[str, str]:
    """Read topics as ``{qid: text}`` from TREC TSV (``qid<TAB>text``, optionally gzipped) or BEIR JSONL."""
    topics: dict[str, str] = {}
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            where = f"{path}:{lineno}"
            obj = json_line(line, where)
            if not isinstance(obj, dict) or "_id" not in obj or not isinstance(obj.get("text"), str):
                raise InputError(f"{where}: expected a JSON object with '_id' and 'text'")
            topics[_id(obj["_id"], "_id", where)] = obj["text"]
            continue
        parts = line.rstrip("\n").split("\t", 1)
        if len(parts) != 2:
            raise InputError(f"{path}:{lineno}: expected 'qid<TAB>query'")
        topics[parts[0].strip()] = parts[1].strip()
    if not topics:
        raise InputError(f"{path}: no topics in file")
    return topics


def read_corpus(path: PathLike) -> Iterator[tuple[str, str, str]]:
    """Yield ``(docid, title, text)`` from a BEIR corpus JSONL (optionally gzipped)."""
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        obj = json_line(line, where)
        fields = ("title", "text")
        if not isinstance(obj, dict) or "_id" not in obj or any(not isinstance(obj.get(k) or "", str) for k in fields):
            raise InputError(f"{where}: expected a JSON object with '_id', 'title', 'text'")
        yield _id(obj["_id"], "_id", where), obj.get("title") or "", obj.get("text") or ""
