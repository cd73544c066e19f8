"""Embedded BM25 over a local BEIR corpus with bm25s, set up to rank like Pyserini's Lucene BM25.

Why this exists: Pyserini needs a JVM and (for the official indexes) the network, while bm25s is pure
Python/NumPy. To make its rankings interchangeable with Pyserini's we use

- Lucene's BM25 variant (``method="lucene"``: idf = ln(1 + (N - df + 0.5) / (df + 0.5)), no (k1 + 1)
  factor) with Anserini's defaults k1 = 0.9, b = 0.4;
- Anserini's English analysis chain, reimplemented in :mod:`perank.retrieval.analysis`;
- one field holding ``title + " " + text``, exactly as Anserini's ``BeirFlatCollection`` (the collection
  Pyserini's ``beir-v1.0.0-*.flat`` indexes are built from) forms its ``contents`` field;
- repeated query terms count once per occurrence (Anserini's bag-of-words query boosts a term by its
  count; bm25s sums a token's scores once per occurrence, which is the same);
- Lucene's lossy one-byte encoding of document length (:func:`lucene_quantized_length`), which plain
  bm25s does not have: without it ArguAna's nDCG@10 is 0.4003 instead of Lucene's 0.3970 and only half
  of the top-10 lists agree; with it every top-10 list is identical (``benchmarks/run.py arguana_bm25``);
- ties broken by docid, as Anserini's searcher does, and only matching documents returned.

Built indexes are cached on disk, keyed by the corpus file's SHA-256 and every setting that affects the
scores, so a second run only loads arrays.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from perank.datasets import results_dir
from perank.io import atomic_write, read_corpus
from perank.retrieval.analysis import LuceneEnglishAnalyzer
from perank.types import InputError

logger = logging.getLogger(__name__)

#: Anserini's (and so Pyserini's) BM25 defaults.
DEFAULT_K1 = 0.9
DEFAULT_B = 0.4


def index_cache_dir() -> Path:
    """Where built indexes are kept: ``$PERANK_INDEX_CACHE``, else ``results/tmp/indexes`` (git-ignored)."""
    env = os.environ.get("PERANK_INDEX_CACHE")
    return Path(env) if env else results_dir() / "tmp" / "indexes"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes; the cache key, so an edited corpus never reuses a stale index."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def beir_passage_text(title: str, text: str) -> str:
    """The passage text rerankers see for a BEIR document (PE-Rank's convention, kept when the title is empty)."""
    return f"Title: {title} Content: {text}"


@dataclass
class Hit:
    """One search result of a backend, before it becomes a :class:`~perank.types.Candidate`."""

    docid: str
    score: float
    raw: str | None = None  # the stored document, when the backend hands it out with the hit (Lucene)


@dataclass
class BM25sIndex:
    """A bm25s index over one corpus, with the docids in index order and the analyzer that built it."""

    retriever: object  # bm25s.BM25 (kept untyped so importing this module does not import bm25s)
    docids: list[str]
    analyzer: LuceneEnglishAnalyzer
    build_seconds: float = 0.0
    loaded_from_cache: bool = False
    _docid_rank: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Position of each document in docid order, used to break score ties by docid like Anserini.
        order = sorted(range(len(self.docids)), key=self.docids.__getitem__)
        rank = np.empty(len(self.docids), dtype=np.int64)
        rank[order] = np.arange(len(self.docids))
        self._docid_rank = rank

    def search(self, query: str, k: int) -> list[Hit]:
        """The top ``k`` documents for ``query`` (fewer when fewer match), best first."""
        if k <= 0:
            return []
        tokens = self.analyzer(query)
        vocab = self.retriever.vocab_dict  # type: ignore[attr-defined]
        ids = [vocab[t] for t in tokens if t in vocab]
        if not ids:
            return []
        scores = np.asarray(self.retriever.get_scores(ids), dtype=np.float32)  # type: ignore[attr-defined]
        matching = np.flatnonzero(scores > 0)
        if matching.size > k:
            # Everything scoring at least the k-th best score, so that ties at the cut are broken by docid.
            kth = np.partition(scores[matching], matching.size - k)[matching.size - k]
            matching = matching[scores[matching] >= kth]
        order = np.lexsort((self._docid_rank[matching], -scores[matching]))[:k]
        chosen = matching[order]
        return [Hit(docid=self.docids[i], score=float(scores[i])) for i in chosen]


def _bm25s():  # -> the bm25s module, imported lazily because it pulls in scipy
    """Import bm25s and undo its import-time ``setLevel(DEBUG)``, which floods any INFO-level log."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def lucene_quantized_length(lengths: np.ndarray) -> np.ndarray:
    """Document lengths as Lucene's BM25 sees them after its one-byte norm (``SmallFloat.intToByte4``).

    Lucene stores a field's length in a single byte: lengths below 24 exactly, larger ones rounded down to
    four significant bits (so 100 is seen as 96, 1000 as 984). Scoring with the decoded length is what
    makes long documents rank exactly as in Lucene; with exact lengths ArguAna's nDCG@10 moves by ~0.003.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    free = 24  # Lucene's NUM_FREE_VALUES = 255 - longToInt4(Integer.MAX_VALUE)
    rest = np.maximum(lengths - free, 0)
    bits = np.zeros_like(rest)
    nz = rest > 0
    bits[nz] = np.floor(np.log2(rest[nz])).astype(np.int64) + 1  # bit length
    shift = np.maximum(bits - 4, 0)
    kept = (rest >> shift) << shift  # keep the four most significant bits
    return np.where(lengths < free, lengths, free + kept)


def _lucene_bm25_class() -> type:
    """A bm25s.BM25 whose index uses Lucene's quantised document lengths (subclassed lazily: bm25s is heavy)."""
    import scipy.sparse as sp

    bm25s = _bm25s()

    class LuceneBM25(bm25s.BM25):
        """bm25s with Lucene's BM25 exactly: Lucene idf and tf parts, quantised lengths, exact average length."""

        def build_index_from_ids(
            self,
            unique_token_ids: list[int],
            corpus_token_ids: list[list[int]],
            show_progress: bool = True,
            leave_progress: bool = False,
        ) -> dict[str, object]:
            n_docs = len(corpus_token_ids)
            n_vocab = len(unique_token_ids)
            rows: list[np.ndarray] = []
            cols: list[np.ndarray] = []
            tfs: list[np.ndarray] = []
            lengths = np.zeros(n_docs, dtype=np.int64)
            for i, doc in enumerate(corpus_token_ids):
                ids, counts = np.unique(np.asarray(doc, dtype=np.int64), return_counts=True)
                lengths[i] = len(doc)
                rows.append(np.full(len(ids), i, dtype=np.int64))
                cols.append(ids)
                tfs.append(counts)
            row = np.concatenate(rows)
            col = np.concatenate(cols)
            tf = np.concatenate(tfs).astype(np.float64)
            df = np.bincount(col, minlength=n_vocab).astype(np.float64)
            # Lucene: N and the average length count documents that have the field at all.
            doc_count = max(int((lengths > 0).sum()), 1)
            avgdl = lengths.sum() / doc_count
            idf = np.log1p((doc_count - df + 0.5) / (df + 0.5))
            norm = self.k1 * ((1 - self.b) + self.b * lucene_quantized_length(lengths) / avgdl)
            data = idf[col] * tf / (tf + norm[row])
            matrix = sp.csc_matrix((data.astype(self.dtype), (row, col)), shape=(n_docs, n_vocab))
            self.nonoccurrence_array = None
            return {
                "data": matrix.data.astype(self.dtype),
                "indices": matrix.indices.astype(self.int_dtype),
                "indptr": matrix.indptr,
                "num_docs": n_docs,
            }

    return LuceneBM25


def _cache_key(corpus_hash: str, analyzer: LuceneEnglishAnalyzer, k1: float, b: float, lucene_norms: bool) -> str:
    bm25s = _bm25s()

    settings = {
        "corpus_sha256": corpus_hash,
        "analyzer": analyzer.describe(),
        "k1": k1,
        "b": b,
        "method": "lucene",
        "lucene_norms": lucene_norms,
        "fields": "title+' '+text",
        "bm25s": bm25s.__version__,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def build_bm25s_index(
    docs: Iterable[tuple[str, str, str]],
    *,
    k1: float = DEFAULT_K1,
    b: float = DEFAULT_B,
    analyzer: LuceneEnglishAnalyzer | None = None,
    lucene_norms: bool = True,
) -> BM25sIndex:
    """Index ``(docid, title, text)`` triples in memory (no cache); used directly by tests and small corpora."""
    bm25s = _bm25s()

    analyzer = analyzer or LuceneEnglishAnalyzer()
    start = time.perf_counter()
    docids: list[str] = []
    vocab: dict[str, int] = {}
    corpus_ids: list[list[int]] = []
    seen: set[str] = set()
    for docid, title, text in docs:
        if docid in seen:
            raise InputError(f"corpus has docid {docid!r} twice")
        seen.add(docid)
        docids.append(docid)
        corpus_ids.append([vocab.setdefault(tok, len(vocab)) for tok in analyzer(f"{title} {text}")])
    if not docids:
        raise InputError("corpus is empty; nothing to index")
    if not vocab:
        raise InputError("corpus has no indexable terms (every word is a stopword or punctuation)")
    if lucene_norms:
        retriever = _lucene_bm25_class()(k1=k1, b=b, method="lucene")
    else:
        retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
    retriever.index((corpus_ids, vocab), show_progress=False, create_empty_token=False)
    return BM25sIndex(retriever, docids, analyzer, build_seconds=time.perf_counter() - start)


def load_or_build_bm25s_index(
    corpus_file: Path,
    name: str,
    *,
    k1: float = DEFAULT_K1,
    b: float = DEFAULT_B,
    lucene_norms: bool = True,
    cache: bool = True,
) -> BM25sIndex:
    """The bm25s index of a BEIR corpus file, loaded from the cache when an identical one was built before."""
    bm25s = _bm25s()

    analyzer = LuceneEnglishAnalyzer()
    key = _cache_key(file_sha256(corpus_file), analyzer, k1, b, lucene_norms)
    folder = index_cache_dir() / "bm25s" / f"{name}-{key}"
    if cache and (folder / "docids.json").exists():
        start = time.perf_counter()
        try:
            retriever = bm25s.BM25.load(str(folder / "bm25s"), load_corpus=False)
            docids = json.loads((folder / "docids.json").read_text(encoding="utf-8"))
            index = BM25sIndex(retriever, docids, analyzer, build_seconds=time.perf_counter() - start)
            index.loaded_from_cache = True
            logger.info("loaded bm25s index %s (%d docs)", folder, len(docids))
            return index
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("bm25s index cache %s unreadable (%s); rebuilding", folder, exc)
    logger.info("building bm25s index of %s", corpus_file)
    index = build_bm25s_index(read_corpus(corpus_file), k1=k1, b=b, analyzer=analyzer, lucene_norms=lucene_norms)
    if cache:
        _save(index, folder)
    return index


def _save(index: BM25sIndex, folder: Path) -> None:
    """Save into a temporary sibling and rename it into place, so concurrent runs never see half an index."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        index.retriever.save(str(tmp / "bm25s"))  # type: ignore[attr-defined]
        with atomic_write(tmp / "docids.json") as handle:
            json.dump(index.docids, handle)
        try:
            os.replace(tmp, folder)
        except OSError:  # another run finished the same index first; theirs is identical
            shutil.rmtree(tmp, ignore_errors=True)
        logger.info("cached bm25s index at %s", folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
