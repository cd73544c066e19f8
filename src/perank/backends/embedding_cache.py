"""A persistent passage-embedding cache, shared safely between runs and between processes.

PE-Rank embeds every candidate with a frozen encoder before the LLM sees it. The same passages come back
again and again (BM25 top-100 of the same queries across rerankers, window sizes, checkpoints that share an
encoder, repeated benchmark runs), so their embeddings are worth keeping.

Storage: one SQLite file in WAL mode. A row is keyed by ``(key_prefix, sha1(text as UTF-8))``; the prefix
identifies the encoder *and every setting that changes its output* (name, pooling, max length, dtype), so
two encoder settings never read each other's vectors. Vectors are stored as raw float32 bytes with their
dimension; a text may instead have a float32 *matrix* (ColBERT's one vector per token: ``matrix=True``),
stored as its rows' bytes with the row width as ``dim`` and reshaped on read, in the same table. Writers use
``INSERT OR IGNORE`` inside short transactions, so concurrent processes writing the same keys neither fail
nor corrupt anything: the first row wins and later identical rows are dropped (the encoder is deterministic,
so they would be equal anyway).

Usage::

    cache = EmbeddingCache("~/.cache/perank/embeddings.sqlite")
    vectors = encode_cached(model.encoder, texts, cache, batch_size=64)   # encodes only the misses

or set ``encoder.cache = cache`` once and every ``encoder.encode`` call goes through the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: SQLite's default limit on bound parameters is 999 on old builds; stay well under it.
_CHUNK = 400

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    prefix TEXT NOT NULL,
    hash BLOB NOT NULL,
    dim INTEGER NOT NULL,
    vec BLOB NOT NULL,
    PRIMARY KEY (prefix, hash)
) WITHOUT ROWID
"""


def text_hash(text: str) -> bytes:
    """The 20-byte SHA-1 digest of the text's UTF-8 bytes (the text itself is never stored)."""
    return hashlib.sha1(text.encode("utf-8")).digest()


def text_key(text: str) -> str:
    """:func:`text_hash` as hex: the key of a text in in-memory and ``.pt`` embedding caches (training's
    ``--embedding_cache``, ``perank build-rank-data --embeddings``), the same identity as the SQLite cache."""
    return text_hash(text).hex()


def encoder_key(encoder: Any) -> str:
    """The key prefix of an encoder: everything that changes the vectors it returns.

    Works for :class:`perank.backends.encoder.PassageEncoder` and anything with ``name_or_path``,
    ``pooling`` and ``max_length`` attributes. The parameter dtype is part of the key because a bf16 and an
    fp32 encoder give (slightly) different vectors.
    """
    name = getattr(encoder, "name_or_path", None) or type(encoder).__name__
    pooling = getattr(encoder, "pooling", "?")
    max_length = getattr(encoder, "max_length", "?")
    dtype = "?"
    with contextlib.suppress(AttributeError, StopIteration):
        dtype = str(next(encoder.parameters()).dtype).removeprefix("torch.")
    return f"{name}|pooling={pooling}|max_length={max_length}|dtype={dtype}"


class EmbeddingCache:
    """Float32 vectors keyed by ``(key_prefix, sha1(text))`` in one SQLite file (WAL mode).

    One connection per process and thread (opened lazily and reopened after a fork), so an instance can be
    passed to worker processes. ``hits`` and ``misses`` count lookups made through this instance.
    """

    def __init__(self, path: str | os.PathLike[str], timeout_s: float = 60.0) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout_s = timeout_s
        self.hits = 0
        self.misses = 0
        self._local = threading.local()
        self._connect()  # create the schema now, so a bad path fails here

    # -------------------------------------------------------------- connection handling

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        conn = sqlite3.connect(str(self.path), timeout=self.timeout_s, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
        # journal_mode=WAL needs a write lock the first time; retry on contention handled by busy_timeout
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(_SCHEMA)
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # connections do not pickle; the child opens its own
        state = self.__dict__.copy()
        state.pop("_local", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"

    # -------------------------------------------------------------- API

    def get_many(self, key_prefix: str, texts: Sequence[str], matrix: bool = False) -> list[np.ndarray | None]:
        """The cached vector of each text (float32, shape ``[dim]``), or None where it is not cached.

        ``matrix=True`` reads what ``put_many(..., matrix=True)`` stored: a ``[rows, dim]`` array per text."""
        hashes = [text_hash(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        conn = self._connect()
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT hash, dim, vec FROM embeddings WHERE prefix = ? AND hash IN ({marks})",
                (key_prefix, *chunk),
            ).fetchall()
            for h, dim, blob in rows:
                vec = np.frombuffer(blob, dtype=np.float32)
                if matrix and dim > 0 and vec.shape[0] % dim == 0:
                    vec = vec.reshape(-1, dim)
                elif vec.shape[0] != dim:  # never written like this; treat as a miss rather than trust it
                    continue
                found[bytes(h)] = vec.copy()
        out = [found.get(h) for h in hashes]
        n_hit = sum(v is not None for v in out)
        self.hits += n_hit
        self.misses += len(out) - n_hit
        return out

    def put_many(self, key_prefix: str, texts: Sequence[str], vectors: Any, matrix: bool = False) -> None:
        """Store one vector per text (``[n, d]`` array/tensor or list of ``[d]`` vectors); existing keys are kept.

        ``matrix=True``: one ``[rows, d]`` matrix per text instead (a list; rows may differ between texts)."""
        if len(texts) == 0:
            return
        if hasattr(vectors, "detach"):
            vectors = vectors.detach().float().cpu().numpy()
        rows = []
        for text, vec in zip(texts, vectors, strict=True):
            if hasattr(vec, "detach"):
                vec = vec.detach().float().cpu().numpy()
            arr = np.ascontiguousarray(np.asarray(vec, dtype=np.float32))
            if matrix and arr.ndim != 2:
                raise ValueError(f"matrix=True needs one [rows, dim] array per text, got shape {arr.shape}")
            dim = int(arr.shape[1]) if matrix else int(arr.size)
            rows.append((key_prefix, text_hash(text), dim, arr.reshape(-1).tobytes()))
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR IGNORE INTO embeddings (prefix, hash, dim, vec) VALUES (?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def count(self, key_prefix: str | None = None) -> int:
        """How many vectors are stored (for one prefix, or in total)."""
        conn = self._connect()
        if key_prefix is None:
            return int(conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
        return int(conn.execute("SELECT COUNT(*) FROM embeddings WHERE prefix = ?", (key_prefix,)).fetchone()[0])


def encode_cached(encoder: Any, texts: Sequence[str], cache: EmbeddingCache | None, batch_size: int = 64) -> Any:
    """``encoder.encode(texts)`` through the cache: only texts not cached (deduplicated) are encoded.

    Returns a ``[n, d]`` float32 CPU tensor, like :meth:`PassageEncoder.encode`.
    """
    import torch

    texts = list(texts)
    encode = getattr(encoder, "encode_uncached", None) or encoder.encode
    if cache is None:
        return encode(texts, batch_size=batch_size)
    if not texts:
        return torch.zeros(0, encoder.dim)
    prefix = encoder_key(encoder)
    cached = cache.get_many(prefix, texts)
    missing = list(dict.fromkeys(t for t, v in zip(texts, cached) if v is None))
    fresh: dict[str, Any] = {}
    if missing:
        encoded = encode(missing, batch_size=batch_size).float().cpu()
        cache.put_many(prefix, missing, encoded)
        fresh = dict(zip(missing, encoded))
    rows = [torch.from_numpy(v) if v is not None else fresh[t] for t, v in zip(texts, cached)]
    return torch.stack(rows).to(torch.float32)
