"""First-stage retrieval: BM25 candidates for every query of a dataset, from whichever source is available.

Three sources, in the order ``backend="auto"`` prefers them:

1. ``shipped``: the BM25 top-100 lists this repository ships (DL19/DL20, from rank_llm), which are
   exactly what Pyserini's ``msmarco-v1-passage`` index returns; no index, no Java, no network.
2. ``bm25s``: an embedded BM25 index over a shipped BEIR corpus (e.g. ArguAna), tuned to rank like
   Lucene (see :mod:`perank.retrieval.bm25s_backend`).
3. ``pyserini``: Lucene via Pyserini; over a local index when the dataset ships its corpus, otherwise over
   the official prebuilt index, which is downloaded on first use and so needs the network. This is the
   path PE-Rank's own numbers come from.

For BEIR datasets a query's own document is removed from its results, as Pyserini's ``--remove-query``
does for every BEIR dataset (it matters for ArguAna and Quora, whose queries are corpus documents).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from perank.datasets import DatasetSpec, get_dataset, results_dir
from perank.io import read_corpus, read_retrieval_results, read_topics, write_retrieval_results, write_trec_run
from perank.retrieval.bm25s_backend import BM25sIndex, Hit, beir_passage_text, load_or_build_bm25s_index
from perank.types import Candidate, InputError, Query, Request

logger = logging.getLogger(__name__)

RETRIEVERS: tuple[str, ...] = ("bm25",)
BACKENDS: tuple[str, ...] = ("auto", "bm25s", "pyserini")

BatchSearch = Callable[[list[str], list[str], int], Iterator[dict[str, list[Hit]]]]


def retrieval_results_path(dataset: str, retriever: str, topk: int) -> Path:
    """Where the retrieval results of a dataset go: ``results/retrieval_results/{retriever}/{dataset}_top{k}.jsonl``."""
    return results_dir() / "retrieval_results" / retriever / f"{dataset}_top{topk}.jsonl"


def trec_path_for(jsonl_path: Path) -> Path:
    """The TREC run written beside a retrieval-results JSONL (same name, ``.trec`` suffix)."""
    return jsonl_path.with_suffix(".trec")


def _local(spec: DatasetSpec, attr: str) -> Path | None:
    """A shipped file's path when the dataset ships it *and* it is present on disk."""
    path = spec.local(attr)
    return path if path is not None and path.exists() else None


def resolve_backend(dataset: str | DatasetSpec, backend: str = "auto") -> str:
    """The concrete source ``backend`` means for this dataset: ``shipped``, ``bm25s`` or ``pyserini``."""
    spec = dataset if isinstance(dataset, DatasetSpec) else get_dataset(dataset)
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    if _local(spec, "candidates_file"):
        return "shipped"
    if _local(spec, "corpus_file"):
        return "bm25s"
    return "pyserini"


def retrieve(dataset: str, retriever: str = "bm25", topk: int = 100, backend: str = "auto") -> list[Request]:
    """BM25 top-``topk`` candidates for every query of ``dataset``, in topic-file order.

    Raises :class:`~perank.types.InputError` for an unknown dataset/retriever/backend, a ``topk`` larger
    than the shipped candidate lists, or a source that cannot be had here (no corpus and no network).
    """
    spec = get_dataset(dataset)
    if retriever not in RETRIEVERS:
        raise InputError(f"unknown retriever {retriever!r}; supported: {', '.join(RETRIEVERS)}")
    if not isinstance(topk, int) or isinstance(topk, bool) or topk < 1:
        raise InputError(f"topk must be a positive integer, got {topk!r}")
    source = resolve_backend(spec, backend)
    logger.info("retrieving %s with %s (%s), top %d", spec.name, retriever, source, topk)
    if source == "shipped":
        return _shipped(spec, topk)
    if source == "bm25s":
        return _bm25s(spec, topk)
    return _pyserini(spec, topk)


def _shipped(spec: DatasetSpec, topk: int) -> list[Request]:
    """The shipped candidate lists, truncated to ``topk`` (never padded: more needs a real index)."""
    path = spec.require("candidates_file")
    requests = read_retrieval_results(path)
    available = min(len(r.candidates) for r in requests)
    if topk > available:
        raise InputError(
            f"dataset {spec.name!r} ships only the top {available} BM25 candidates per query ({path}); "
            f"topk={topk} needs Pyserini's prebuilt index {spec.pyserini_index!r} "
            "(--backend pyserini, which needs network access the first time)"
        )
    return [Request(query=r.query, candidates=r.candidates[:topk]) for r in requests]


def _topics(spec: DatasetSpec) -> dict[str, str]:
    """Queries from the shipped topics file, else from Pyserini's bundled topics (starts the JVM)."""
    path = _local(spec, "topics_file")
    if path is not None:
        return read_topics(path)
    from perank.retrieval.pyserini_backend import pyserini_topics

    return pyserini_topics(spec.pyserini_topics)


def _bm25s(spec: DatasetSpec, topk: int) -> list[Request]:
    """Embedded BM25 over the dataset's shipped corpus."""
    corpus_file = _local(spec, "corpus_file")
    if corpus_file is None:
        raise InputError(
            f"backend 'bm25s' needs a local corpus, and dataset {spec.name!r} ships none; use --backend "
            f"pyserini (Pyserini's prebuilt index {spec.pyserini_index!r}, which needs network access)"
        )
    index = load_or_build_bm25s_index(corpus_file, spec.name)
    texts = {docid: beir_passage_text(title, text) for docid, title, text in read_corpus(corpus_file)}
    return search_topics(
        _topics(spec),
        bm25s_batches(index),
        lambda hit: texts[hit.docid],
        topk,
        remove_query=spec.beir_name is not None,
        desc=f"bm25s {spec.name}",
    )


def bm25s_batches(index: BM25sIndex) -> BatchSearch:
    """Adapt a bm25s index to the batch interface :func:`search_topics` drives (one query per batch)."""

    def run(queries: list[str], qids: list[str], k: int) -> Iterator[dict[str, list[Hit]]]:
        for qid, query in zip(qids, queries):
            yield {qid: index.search(query, k)}

    return run


def _pyserini(spec: DatasetSpec, topk: int) -> list[Request]:
    """Lucene BM25: a local index when the corpus is shipped, otherwise the official prebuilt index."""
    from perank.retrieval import pyserini_backend

    corpus_file = _local(spec, "corpus_file")
    if corpus_file is not None:
        searcher, _ = pyserini_backend.open_local_searcher(corpus_file, spec.name)
    else:
        searcher = pyserini_backend.open_prebuilt_searcher(spec.pyserini_index, beir=spec.beir_name is not None)
    return search_topics(
        _topics(spec),
        searcher.iter_batches,
        searcher.content,
        topk,
        remove_query=spec.beir_name is not None,
        desc=f"pyserini {spec.name}",
    )


def search_topics(
    topics: dict[str, str],
    batches: BatchSearch,
    content: Callable[[Hit], str],
    topk: int,
    *,
    remove_query: bool,
    desc: str = "search",
) -> list[Request]:
    """Search every topic and build requests with 1-based ranks and the backend's scores.

    With ``remove_query`` one extra hit is fetched and the hit whose docid equals the qid dropped, so a
    query never retrieves itself and still gets ``topk`` candidates (Pyserini's ``--remove-query``).
    Queries that match no document at all are left out, with a warning, as they are from a TREC run.
    """
    from tqdm.auto import tqdm

    qids = list(topics)
    k = topk + 1 if remove_query else topk
    hits_by_qid: dict[str, list[Hit]] = {}
    start = time.perf_counter()
    with tqdm(total=len(qids), desc=desc, unit="q", disable=None) as bar:
        for found in batches([topics[q] for q in qids], qids, k):
            hits_by_qid.update(found)
            bar.update(len(found))
    logger.info("searched %d queries in %.1f s", len(qids), time.perf_counter() - start)
    requests: list[Request] = []
    empty: list[str] = []
    for qid in qids:
        hits = hits_by_qid.get(qid, [])
        if remove_query:
            hits = [h for h in hits if h.docid != qid]
        hits = hits[:topk]
        if not hits:
            empty.append(qid)
            continue
        candidates = [
            Candidate(docid=h.docid, text=content(h), score=h.score, rank=rank) for rank, h in enumerate(hits, start=1)
        ]
        requests.append(Request(query=Query(qid=qid, text=topics[qid]), candidates=candidates))
    if empty:
        logger.warning("%d queries matched no document and are left out: %s", len(empty), ", ".join(empty[:10]))
    if not requests:
        raise InputError("no query matched any document")
    return requests


def run_retrieval(
    dataset: str,
    retriever: str = "bm25",
    topk: int = 100,
    backend: str = "auto",
    output: str | Path | None = None,
) -> Path:
    """Retrieve and write the results JSONL plus the matching TREC run (``.trec`` beside it); return the JSONL path."""
    spec = get_dataset(dataset)
    path = Path(output) if output is not None else retrieval_results_path(spec.name, retriever, topk)
    requests = retrieve(spec.name, retriever=retriever, topk=topk, backend=backend)
    write_retrieval_results(path, requests)
    trec = trec_path_for(path)
    write_trec_run(trec, requests, tag=retriever)
    logger.info("wrote %s and %s (%d queries)", path, trec, len(requests))
    return path
