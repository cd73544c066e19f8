"""Retrieve -> rerank -> write -> score, resumable, for any registered reranker.

Reranking with an LLM takes hours on a CPU, so the pipeline never loses finished work: after each batch the
reranked queries are appended (and fsynced) to ``<run>.partial.jsonl``; a rerun with the same settings
skips them. Only when every query is done is the TREC run written, atomically, in the input query order,
and the progress file removed. A crash can at worst truncate the progress file's last line, which is then
dropped with a warning (that query is reranked again; none is ever counted twice).

Every result is checked against its request (same docids, each once) before it is saved, so a buggy
reranker fails loudly, naming the query and the document, instead of producing a run that silently scores
documents that were never candidates.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import statistics
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from perank.io import append_jsonl, atomic_write, read_retrieval_results, write_trec_run
from perank.metrics import (
    count_scored_queries,
    evaluate_run,
    format_metrics,
    metrics_path,
    update_metrics_json,
)
from perank.ranking.base import BaseReranker
from perank.ranking.registry import build_reranker
from perank.types import Candidate, InputError, Request, Result

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: queries per call to ``BaseReranker.rerank``; also how often progress is saved
DEFAULT_BATCH_SIZE = 8
#: accounting keys reported for every run, even by rerankers that do not set them
CORE_STATS = ("latency_s", "tokens_processed", "tokens_generated")


# --------------------------------------------------------------------------------------------------
# naming
# --------------------------------------------------------------------------------------------------


def run_label(reranker: BaseReranker) -> str:
    """The ``{model-or-reranker-name}`` part of a run's file name.

    A reranker may choose it (``describe()["run_label"]``); otherwise it is the last path component of
    ``describe()["model"]`` (``liuqi6777/pe-rank-mistral-jina`` -> ``pe-rank-mistral-jina``), else the
    reranker's registry name. Characters unsafe in file names become ``-``.
    """
    info = reranker.describe()
    label = info.get("run_label")
    if not label and info.get("model"):
        label = Path(str(info["model"]).rstrip("/")).name
    return _safe_name(str(label or reranker.name or type(reranker).__name__))


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-") or "run"


def default_output_dir() -> Path:
    """``results/reranking_results/`` (under ``$PERANK_RESULTS`` when set)."""
    from perank.datasets import results_dir

    return results_dir() / "reranking_results"


def run_file_name(dataset: str, label: str, topk: int) -> str:
    """``eval_{dataset}_{label}_top{topk}.txt``, as the original PE-Rank names its runs."""
    return f"eval_{dataset}_{_safe_name(label)}_top{topk}.txt"


def partial_path(run_path: PathLike) -> Path:
    """The progress file of a run: its full name plus ``.partial.jsonl``, beside it."""
    run_path = Path(run_path)
    return run_path.with_name(run_path.name + ".partial.jsonl")


# --------------------------------------------------------------------------------------------------
# candidates and qrels
# --------------------------------------------------------------------------------------------------


def load_candidates(
    dataset: str,
    *,
    retriever: str = "bm25",
    topk: int = 100,
    retrieval_results: PathLike | None = None,
    backend: str = "auto",
) -> list[Request]:
    """First-stage candidates, truncated to ``topk``.

    From ``retrieval_results`` when given (JSONL or rank_llm JSON); else from the retrieval-results JSONL
    that ``run_evaluation.py`` writes, retrieving first if it does not exist yet.
    """
    if topk < 1:
        raise InputError(f"topk must be at least 1, got {topk}")
    if retrieval_results is not None:
        requests = read_retrieval_results(retrieval_results)
    else:
        requests = _retrieved(dataset, retriever, topk, backend)
    for request in requests:
        del request.candidates[topk:]
    return requests


def _retrieved(dataset: str, retriever: str, topk: int, backend: str) -> list[Request]:
    """The saved retrieval results of ``run_evaluation.py``, retrieving (and saving) them first if needed."""
    from perank.retrieval import retrieval_results_path, run_retrieval

    path = Path(retrieval_results_path(dataset, retriever, topk))
    if not path.exists():
        logger.info("%s not found; running %s retrieval for %s first", path, retriever, dataset)
        path = Path(run_retrieval(dataset, retriever, topk, backend))
    return read_retrieval_results(path)


def resolve_qrels(dataset: str, qrels: PathLike | None) -> Path | None:
    """The qrels to score with: the given file (must exist), else the dataset's shipped one, else None.

    Checked before reranking starts, so a wrong path fails in a second rather than after hours.
    """
    if qrels is not None:
        path = Path(qrels)
        if not path.is_file():
            raise InputError(f"{path}: qrels file not found")
        return path
    from perank.datasets import get_dataset

    path = get_dataset(dataset).local("qrels_file")
    return path if path is not None and path.exists() else None


# --------------------------------------------------------------------------------------------------
# validation and the progress file
# --------------------------------------------------------------------------------------------------


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


def _record(result: Result) -> dict[str, Any]:
    """The progress-file line of a finished query (no passage text: the candidates file has it)."""
    return {
        "qid": result.query.qid,
        "query": result.query.text,
        "hits": [{"docid": c.docid, "rank": r, "score": c.score} for r, c in enumerate(result.candidates, start=1)],
        "stats": result.stats,
    }


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
            if _comparable(obj["_header"]) != _comparable(header):
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


def _comparable(obj: Any) -> Any:
    """JSON round trip, so a header read back compares equal to the one built in memory."""
    return json.loads(json.dumps(obj, default=str, sort_keys=True))


# --------------------------------------------------------------------------------------------------
# accounting
# --------------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(float(value))


def summarize_stats(results: Iterable[Result]) -> dict[str, Any]:
    """Per-query numeric stats plus their totals, means and medians.

    ``latency_s``, ``tokens_processed`` and ``tokens_generated`` are always reported (0 when a reranker does
    not count them); any other numeric key a reranker sets (``parse_repairs``, ``truncated_passages``, ...)
    is summed over the queries that report it. Booleans count as 0/1.
    """
    per_query: dict[str, dict[str, float]] = {}
    for result in results:
        stats = {k: v for k, v in result.stats.items() if _is_number(v)}
        for key in CORE_STATS:
            stats.setdefault(key, 0)
        per_query[result.query.qid] = {k: (int(v) if isinstance(v, bool) else v) for k, v in stats.items()}
    keys = list(CORE_STATS) + sorted({k for s in per_query.values() for k in s} - set(CORE_STATS))
    totals, means, medians = {}, {}, {}
    for key in keys:
        values = [s[key] for s in per_query.values() if key in s]
        totals[key] = sum(values)
        means[key] = statistics.fmean(values) if values else 0.0
        medians[key] = statistics.median(values) if values else 0.0
    return {"num_queries": len(per_query), "totals": totals, "means": means, "medians": medians, "per_query": per_query}


# --------------------------------------------------------------------------------------------------
# the pipeline
# --------------------------------------------------------------------------------------------------


def _batches(items: Sequence[Request], size: int) -> Iterable[list[Request]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def rerank_resumable(
    reranker: BaseReranker,
    requests: Sequence[Request],
    progress_file: PathLike,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    header: dict[str, Any] | None = None,
    show_progress: bool = True,
    desc: str = "reranking",
) -> list[Result]:
    """Rerank ``requests`` batch by batch, appending finished queries to ``progress_file``.

    Queries already in the progress file are not reranked again. Returns one result per request, in the
    order of ``requests``; the progress file is left in place (the caller removes it once the run is saved).
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    header = header or {}
    progress_file = Path(progress_file)
    done = load_progress(progress_file, requests, header)
    if done:
        logger.warning("%s: resuming, %d of %d queries already done", progress_file, len(done), len(requests))
    todo = [r for r in requests if r.query.qid not in done]
    progress_file.parent.mkdir(parents=True, exist_ok=True)
    fresh = not progress_file.exists() or progress_file.stat().st_size == 0
    with (
        open(progress_file, "a", encoding="utf-8") as handle,
        tqdm(total=len(requests), initial=len(done), desc=desc, unit="q", disable=not show_progress) as bar,
    ):
        if fresh:
            append_jsonl(handle, {"_header": _comparable(header)})
        for batch in _batches(todo, batch_size):
            start = time.perf_counter()
            results = reranker.rerank(batch)
            elapsed = time.perf_counter() - start
            if len(results) != len(batch):
                raise InputError(f"reranker returned {len(results)} results for a batch of {len(batch)} queries")
            for request, result in zip(batch, results):
                check_result(request, result)
                result.stats.setdefault("latency_s", elapsed / len(batch))
            for result in results:
                append_jsonl(handle, _record(result))
                done[result.query.qid] = result
            bar.update(len(batch))
    return [done[r.query.qid] for r in requests]


def run_pipeline(
    dataset: str,
    reranker: BaseReranker | str,
    *,
    retriever: str = "bm25",
    topk: int = 100,
    retrieval_results: PathLike | None = None,
    qrels: PathLike | None = None,
    output_dir: PathLike | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    run_name: str | None = None,
    backend: str = "auto",
    complete: bool = False,
    overwrite: bool = False,
    show_progress: bool = True,
    reranker_kwargs: dict[str, Any] | None = None,
) -> tuple[Path, dict[str, float]]:
    """Rerank one dataset's candidates and score the run; returns the run path and its metrics.

    The run goes to ``output_dir/eval_{dataset}_{run_name or model/reranker name}_top{topk}.txt`` and its
    metrics plus the reranker's accounting to ``<run>.metrics.json``. Metrics are empty when the dataset
    ships no qrels and none are given (the run is still written). An existing finished run is rescored,
    not recomputed, unless ``overwrite``.
    """
    from perank.datasets import get_dataset

    spec = get_dataset(dataset)  # unknown names fail here, listing the known ones
    qrels_path = resolve_qrels(spec.name, qrels)
    if isinstance(reranker, str):
        reranker = build_reranker(reranker, **(reranker_kwargs or {}))
    label = _safe_name(run_name) if run_name else run_label(reranker)
    out_dir = Path(output_dir) if output_dir is not None else default_output_dir()
    run_path = out_dir / run_file_name(spec.name, label, topk)
    progress = partial_path(run_path)
    info = _comparable(reranker.describe())
    header = {"dataset": spec.name, "retriever": retriever, "topk": topk, "reranker": info}

    if run_path.exists() and not progress.exists() and not overwrite:
        print(f"{run_path} exists; scoring it (pass --overwrite to rerank again)")
        accounting = None
    else:
        if overwrite and run_path.exists():  # start afresh; a crash after this resumes the new run
            progress.unlink(missing_ok=True)
            run_path.unlink()
        requests = load_candidates(
            spec.name, retriever=retriever, topk=topk, retrieval_results=retrieval_results, backend=backend
        )
        results = rerank_resumable(
            reranker,
            requests,
            progress,
            batch_size=batch_size,
            header=header,
            show_progress=show_progress,
            desc=f"{spec.name} {label}",
        )
        write_trec_run(run_path, results, tag=label)
        accounting = summarize_stats(results)

    metrics: dict[str, float] = {}
    fields: dict[str, Any] = {**header, "run": str(run_path)}
    if qrels_path is not None:
        from perank.io import read_qrels, read_trec_run

        run, judged = read_trec_run(run_path), read_qrels(qrels_path)
        metrics = evaluate_run(run, judged, complete=complete)
        fields |= {
            "qrels": str(qrels_path),
            "num_queries": len(judged) if complete else count_scored_queries(run, judged),
            "averaging": "all judged queries (trec_eval -c)" if complete else "judged queries in the run",
            "metrics": metrics,
        }
    else:
        print(f"no qrels for {spec.name}: run written to {run_path}, not scored")
    if accounting is not None:
        fields["accounting"] = accounting
    update_metrics_json(metrics_path(run_path), fields)
    progress.unlink(missing_ok=True)  # only now: the run and its accounting are safely on disk

    print(f"{spec.name}: {run_path}")
    if metrics:
        print(format_metrics(metrics))
    if accounting is not None:
        med = accounting["medians"]
        print(
            f"median per query: {med['latency_s']:.3f} s, {med['tokens_processed']:.0f} tokens processed, "
            f"{med['tokens_generated']:.0f} generated"
        )
    return run_path, metrics
