"""Pyserini (Lucene) BM25: a local index built from a shipped corpus, or an official prebuilt index.

The prebuilt path (``LuceneSearcher.from_prebuilt_index``) is what PE-Rank ran and what users with
network access get: it downloads ``beir-v1.0.0-*.flat`` / ``msmarco-v1-passage`` on first use. The local
path builds the same kind of index from a BEIR corpus file with Anserini's ``BeirFlatCollection`` (the
collection the official flat indexes are built from: one ``contents`` field = ``title + " " + text``,
raw JSON stored), so on ArguAna it reproduces the official numbers without the download.

Everything Java-related goes through :func:`perank.retrieval.java.ensure_java` first.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from perank.retrieval.bm25s_backend import DEFAULT_B, DEFAULT_K1, Hit, beir_passage_text, file_sha256, index_cache_dir
from perank.retrieval.java import (
    JavaUnavailableError,
    ensure_java,
    openai_placeholder,
    pyserini_subprocess_env,
    run_pyserini_module,
)
from perank.types import InputError

logger = logging.getLogger(__name__)

#: Where Pyserini downloads prebuilt indexes from (checked before trying, so that offline runs fail fast).
PREBUILT_HOST = "rgw.cs.uwaterloo.ca"
#: Queries per ``batch_search`` call: large enough for Anserini's threads, small enough for a live progress bar.
_BATCH = 64


def _searcher_class() -> Any:
    """Import ``LuceneSearcher`` (this starts the JVM), turning a Java failure into a clear error."""
    try:
        ensure_java()
        with openai_placeholder():
            from pyserini.search.lucene import LuceneSearcher
    except JavaUnavailableError as exc:
        raise InputError(f"Pyserini backend unavailable: {exc}") from exc
    except ImportError as exc:
        raise InputError(f"Pyserini backend unavailable: cannot import pyserini ({exc})") from exc
    except Exception as exc:  # jnius raises plain exceptions (SystemError, JavaException) when the JVM fails
        raise InputError(f"Pyserini backend unavailable: the JVM did not start ({type(exc).__name__}: {exc})") from exc
    return LuceneSearcher


class PyseriniSearcher:
    """A Lucene BM25 searcher plus the knowledge of how to turn its stored raw documents into passage text."""

    def __init__(self, searcher: Any, *, beir: bool, k1: float = DEFAULT_K1, b: float = DEFAULT_B) -> None:
        self.searcher = searcher
        self.beir = beir
        searcher.set_bm25(k1, b)
        self.threads = max(1, min(4, os.cpu_count() or 1))

    def batch_search(self, queries: list[str], qids: list[str], k: int) -> dict[str, list[Hit]]:
        """Top ``k`` hits for each query, keyed by qid (Anserini's own multithreaded batch search)."""
        if not queries:
            return {}
        found = self.searcher.batch_search(queries, qids, k=k, threads=self.threads)
        return {qid: [self._hit(h) for h in found.get(qid, [])] for qid in qids}

    @staticmethod
    def _hit(scored: Any) -> Hit:
        """Keep the stored raw document with the hit: reading it from the hit's Lucene document is about five
        times faster than looking the docid up again with ``searcher.doc`` (which dominated run time)."""
        document = getattr(scored, "lucene_document", None)
        raw = document.get("raw") if document is not None else None
        return Hit(docid=str(scored.docid), score=float(scored.score), raw=raw)

    def iter_batches(self, queries: list[str], qids: list[str], k: int) -> Iterator[dict[str, list[Hit]]]:
        """:meth:`batch_search` in chunks, so callers can show progress."""
        for start in range(0, len(qids), _BATCH):
            yield self.batch_search(queries[start : start + _BATCH], qids[start : start + _BATCH], k)

    def content(self, hit: Hit) -> str:
        """The passage text of a hit, from the raw JSON the index stores (PE-Rank's format for BEIR)."""
        raw = hit.raw
        if raw is None:
            doc = self.searcher.doc(hit.docid)
            if doc is None:
                raise InputError(f"docid {hit.docid!r} is not in the index {self.searcher.index_dir}")
            raw = doc.raw()
        try:
            obj = json.loads(raw)
        except (TypeError, json.JSONDecodeError):
            return str(raw)
        if self.beir:
            if "title" in obj or "text" in obj:
                return beir_passage_text(str(obj.get("title") or ""), str(obj.get("text") or ""))
            return str(obj.get("contents", ""))
        return str(obj.get("contents", obj.get("text", "")))


def build_local_index(corpus_file: Path, name: str) -> Path:
    """Build (once; cached by corpus hash) a Lucene index of a BEIR corpus file with Pyserini's indexer.

    Runs ``python -m pyserini.index.lucene`` in a subprocess, as Pyserini documents, with the options the
    official ``beir-v1.0.0-*.flat`` indexes were built with.
    """
    key = file_sha256(corpus_file)[:16]
    folder = index_cache_dir() / "lucene" / f"{name}-flat-{key}"
    if (folder / ".complete").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-input.", dir=folder.parent))
    tmp_index = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        # The indexer reads every file in its input folder; give it the corpus alone.
        link = staging / ("corpus.jsonl.gz" if corpus_file.suffix == ".gz" else "corpus.jsonl")
        try:
            link.symlink_to(corpus_file.resolve())
        except OSError:
            shutil.copyfile(corpus_file, link)
        args = [
            "--collection", "BeirFlatCollection",
            "--input", str(staging),
            "--index", str(tmp_index),
            "--generator", "DefaultLuceneDocumentGenerator",
            "--threads", "1",
            "--storePositions", "--storeDocvectors", "--storeRaw",
        ]  # fmt: skip
        try:
            env = pyserini_subprocess_env()
        except JavaUnavailableError as exc:
            raise InputError(f"Pyserini backend unavailable: {exc}") from exc
        logger.info("building Lucene index of %s at %s", corpus_file, folder)
        proc = subprocess.run(
            run_pyserini_module("pyserini.index.lucene", args), env=env, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0 or not any(tmp_index.iterdir()):
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise InputError(f"Pyserini indexing of {corpus_file} failed (exit {proc.returncode}):\n{tail}")
        (tmp_index / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S"), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete earlier attempt
        os.replace(tmp_index, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(tmp_index, ignore_errors=True)
    return folder


def open_searcher(index_dir: Path, *, beir: bool = True) -> PyseriniSearcher:
    """A BM25 searcher over an existing Lucene index folder (starts the JVM on first use)."""
    LuceneSearcher = _searcher_class()
    return PyseriniSearcher(LuceneSearcher(str(index_dir)), beir=beir)


def open_local_searcher(corpus_file: Path, name: str) -> tuple[PyseriniSearcher, float]:
    """A searcher over the local index of ``corpus_file`` (built if needed) and the seconds building took."""
    start = time.perf_counter()
    index = build_local_index(corpus_file, name)
    built = time.perf_counter() - start
    return open_searcher(index, beir=True), built


def _network_reachable(host: str = PREBUILT_HOST, timeout: float = 3.0) -> bool:
    """Whether Pyserini's download host answers; checked first because an offline download can hang."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _prebuilt_cached(index_name: str) -> bool:
    """Whether Pyserini's cache already holds this prebuilt index (then no network is needed)."""
    cache = Path(os.environ.get("PYSERINI_CACHE") or Path.home() / ".cache" / "pyserini") / "indexes"
    # Pyserini unpacks e.g. lucene-inverted.beir-v1.0.0-arguana.flat.20221116.505594.<md5>; the date right
    # after the name keeps msmarco-v1-passage from matching msmarco-v1-passage.splade-pp-ed.
    pattern = re.compile(rf"\.{re.escape(index_name)}\.\d{{8}}\.")
    return cache.is_dir() and any(pattern.search(p.name) for p in cache.iterdir())


def open_prebuilt_searcher(index_name: str, *, beir: bool) -> PyseriniSearcher:
    """A searcher over Pyserini's official prebuilt index (downloaded on first use; needs the network)."""
    if not _prebuilt_cached(index_name) and not _network_reachable():
        raise InputError(
            f"Pyserini's prebuilt index {index_name!r} is not in the local Pyserini cache and {PREBUILT_HOST} "
            "cannot be reached, so it cannot be downloaded. Run once with network access (the index is then "
            "cached under ~/.cache/pyserini); offline, only datasets that ship a corpus file (e.g. arguana) or "
            "candidate lists (dl19, dl20) can be retrieved"
        )
    LuceneSearcher = _searcher_class()
    try:
        searcher = LuceneSearcher.from_prebuilt_index(index_name, verbose=True)
    except Exception as exc:  # download/unpack errors come as several types
        raise InputError(f"cannot open Pyserini's prebuilt index {index_name!r}: {exc}") from exc
    if searcher is None:  # Pyserini returns None (after printing why) when the download fails
        raise InputError(f"cannot open Pyserini's prebuilt index {index_name!r} (download failed; see above)")
    return PyseriniSearcher(searcher, beir=beir)


def pyserini_topics(name: str) -> dict[str, str]:
    """Topics Pyserini knows by name (Anserini ships them inside its jar, so this works offline)."""
    _searcher_class()  # starts the JVM with our options
    with openai_placeholder():
        from pyserini.search import get_topics

    try:
        topics = get_topics(name)
    except Exception as exc:
        raise InputError(f"Pyserini has no topics named {name!r}: {exc}") from exc
    out: dict[str, str] = {}
    for qid, fields in topics.items():
        text = fields.get("title") or fields.get("text") or next(iter(fields.values()), "")
        out[str(qid)] = str(text).strip()
    if not out:
        raise InputError(f"Pyserini topics {name!r} are empty")
    return out
