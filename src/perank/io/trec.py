"""TREC runs (``qid Q0 docid rank score tag``), qrels, topics, and BEIR corpora."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from perank.io.fields import finite_float, json_line, parse_id
from perank.io.files import PathLike, atomic_write, text_lines
from perank.types import InputError, Request, Result


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
    for lineno, line in text_lines(path):
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
    for lineno, line in text_lines(path):
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
    for lineno, line in text_lines(path):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            where = f"{path}:{lineno}"
            obj = json_line(line, where)
            if not isinstance(obj, dict) or "_id" not in obj or not isinstance(obj.get("text"), str):
                raise InputError(f"{where}: expected a JSON object with '_id' and 'text'")
            topics[parse_id(obj["_id"], "_id", where)] = obj["text"]
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
    for lineno, line in text_lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        obj = json_line(line, where)
        fields = ("title", "text")
        if not isinstance(obj, dict) or "_id" not in obj or any(not isinstance(obj.get(k) or "", str) for k in fields):
            raise InputError(f"{where}: expected a JSON object with '_id', 'title', 'text'")
        yield parse_id(obj["_id"], "_id", where), obj.get("title") or "", obj.get("text") or ""
