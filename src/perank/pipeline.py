"""Retrieve -> rerank -> write -> score, resumable, for any registered reranker.

After each batch the reranked queries are appended to the run's progress file (see :mod:`perank.progress`
for its format and checks); a rerun with the same settings (the same :class:`~perank.runs.RunIdentity`) skips
them. Only when every query is done is
the TREC run written, atomically, in the input query order, its metrics and accounting saved beside it, and
the progress file removed.

Under torchrun (see :mod:`perank.distributed` and ``docs/scale.md``) each rank reranks its shard of the
queries into its own progress file; rank 0 gathers the shards, writes the one run in the input order (the
same bytes as a one-process run), scores it, and only then does every rank remove its progress file.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from perank.accounting import cut_queries_note, peak_memory_mb, summarize_stats, window_counts
from perank.datasets import find_qrels, get_dataset
from perank.distributed import (
    SINGLE,
    World,
    check_ranks_agree,
    decided_by_main,
    gather_to_main,
    main_first,
    merge_shards,
    shard_batches,
)
from perank.io import append_jsonl, read_retrieval_results, write_trec_run
from perank.metrics import (
    count_scored_queries,
    evaluate_run,
    format_metrics,
    metrics_path,
    update_metrics_json,
)
from perank.progress import append_progress, check_result, load_progress, progress_header
from perank.ranking.base import BaseReranker
from perank.ranking.registry import build_reranker
from perank.runs import (
    RunIdentity,
    default_output_dir,
    partial_path,
    progress_files,
    rank_progress_path,
    run_file_name,
    safe_name,
    unresumable_progress,
)
from perank.shuffle import shuffled
from perank.types import InputError, Request, Result

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: queries per call to ``BaseReranker.rerank``; also how often progress is saved
DEFAULT_BATCH_SIZE = 8


# --------------------------------------------------------------------------------------------------
# candidates
# --------------------------------------------------------------------------------------------------


def load_candidates(
    dataset: str | None,
    *,
    retriever: str = "bm25",
    topk: int = 100,
    retrieval_results: PathLike | None = None,
    backend: str = "auto",
    strict: bool = False,
) -> list[Request]:
    """First-stage candidates, truncated to ``topk``.

    From ``retrieval_results`` when given (JSONL or rank_llm JSON); else from the retrieval-results JSONL
    that ``run_evaluation.py`` writes, retrieving first if it does not exist yet. A docid repeated in one
    query's hits keeps its first occurrence (one warning per file, with the count); ``strict`` refuses it.
    """
    if topk < 1:
        raise InputError(f"topk must be at least 1, got {topk}")
    if retrieval_results is not None:
        requests = read_retrieval_results(retrieval_results, strict=strict)
    else:
        requests = _retrieved(dataset, retriever, topk, backend, strict)
    for request in requests:
        del request.candidates[topk:]
    return requests


def _retrieved(dataset: str, retriever: str, topk: int, backend: str, strict: bool) -> list[Request]:
    """The saved retrieval results of ``run_evaluation.py``, retrieving (and saving) them first if needed."""
    from perank.retrieval import retrieval_results_path, run_retrieval

    path = Path(retrieval_results_path(dataset, retriever, topk))
    if not path.exists():
        logger.info("%s not found; running %s retrieval for %s first", path, retriever, dataset)
        path = Path(run_retrieval(dataset, retriever, topk, backend))
    return read_retrieval_results(path, strict=strict)


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
    # the one-process batches with the finished queries left out: a resumed (or sharded) run reranks each
    # query in the company it has in an uninterrupted run, so batched kernels see the same inputs
    todo = [[r for r in batch if r.query.qid not in done] for batch in _batches(requests, batch_size)]
    progress_file.parent.mkdir(parents=True, exist_ok=True)
    fresh = not progress_file.exists() or progress_file.stat().st_size == 0
    with (
        open(progress_file, "a", encoding="utf-8") as handle,
        tqdm(total=len(requests), initial=len(done), desc=desc, unit="q", disable=not show_progress) as bar,
    ):
        if fresh:
            append_jsonl(handle, progress_header(header))
        for batch in (b for b in todo if b):
            start = time.perf_counter()
            results = reranker.rerank(batch)
            elapsed = time.perf_counter() - start
            if len(results) != len(batch):
                raise InputError(f"reranker returned {len(results)} results for a batch of {len(batch)} queries")
            for request, result in zip(batch, results):
                check_result(request, result)
                result.stats.setdefault("latency_s", elapsed / len(batch))
            append_progress(handle, results)
            done.update((result.query.qid, result) for result in results)
            bar.update(len(batch))
    return [done[r.query.qid] for r in requests]


def check_same_settings(run_path: Path, identity: RunIdentity) -> None:
    """Refuse to rescore an existing run unless its metrics JSON records this command's identity: a run of
    another checkpoint, window size or decode mode must never be reported as this one."""
    recorded_file = metrics_path(run_path)
    try:
        fields = json.loads(recorded_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        fields = None
    recorded = identity.recorded(fields) if isinstance(fields, dict) else None
    if recorded is None:
        raise InputError(
            f"{run_path} exists but {recorded_file} records no settings to check it against; pass --overwrite "
            "to rerank, or --run-name NAME for a new run"
        )
    differences = recorded.differences(identity)
    if differences:
        raise InputError(
            f"{run_path} was made with other settings ({'; '.join(differences)}); pass --overwrite to rerank, "
            "or --run-name NAME for a new run"
        )


def dataset_label(dataset: str | None, retrieval_results: PathLike | None) -> str:
    """The dataset part of a run's name: the registered dataset's name, or for one's own candidates
    (``dataset=None``) the candidates file's name without its suffixes."""
    if dataset is not None:
        return get_dataset(dataset).name
    if retrieval_results is None:
        raise InputError("no dataset: give --datasets NAME, or --retrieval-results FILE to rerank your own candidates")
    return safe_name(Path(retrieval_results).name.split(".")[0])


def _plan(run_path: Path, identity: RunIdentity, overwrite: bool, world: World, batch_size: int) -> bool:
    """Whether the run is finished and only needs rescoring; clears what ``overwrite`` replaces.

    Progress that this job cannot resume (saved by a job of another world size or shard batch size) is
    refused, never mixed in; ``overwrite`` deletes it instead.
    """
    stale = unresumable_progress(run_path, world.size, batch_size)
    if stale and not overwrite:
        path, reason = next(iter(stale.items()))
        raise InputError(f"unfinished progress of {run_path.name} {reason}, or pass --overwrite to start over")
    if run_path.exists() and not progress_files(run_path) and not overwrite:
        check_same_settings(run_path, identity)
        print(f"{run_path} exists with the same settings; scoring it (pass --overwrite to rerank again)")
        return True
    if overwrite and run_path.exists():  # start afresh; a crash after this resumes the new run
        for path in progress_files(run_path):
            path.unlink(missing_ok=True)
        run_path.unlink()
    for path in stale:
        logger.warning("%s: deleting progress of another job layout (--overwrite)", path)
        path.unlink(missing_ok=True)
    return False


def rerank_sharded(
    reranker: BaseReranker,
    requests: Sequence[Request],
    run_path: Path,
    world: World,
    *,
    batch_size: int,
    header: dict[str, Any],
    show_progress: bool,
    desc: str,
) -> list[list[Result]] | None:
    """This rank's shard reranked into its own progress file; on rank 0, every rank's results (one list per
    rank, for :func:`merge_shards`), ``None`` on the others."""
    shard = {"rank": world.rank, "world_size": world.size, "batch_size": batch_size}
    results = rerank_resumable(
        reranker,
        shard_batches(requests, batch_size, world),
        rank_progress_path(run_path, world.rank, world.size),
        batch_size=batch_size,
        header={**header, "shard": shard},
        show_progress=show_progress and world.is_main,
        desc=f"{desc} (rank {world.rank} of {world.size})",
    )
    return gather_to_main(world, results)


def run_pipeline(
    dataset: str | None,
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
    world: World = SINGLE,
    shuffle_input: str | None = None,
    strict: bool = False,
) -> tuple[Path, dict[str, float]]:
    """Rerank one dataset's candidates and score the run; returns the run path and its metrics.

    The run goes to ``output_dir/eval_{dataset}_{run_name or model/reranker name}_top{topk}.txt`` and its
    metrics plus the reranker's accounting to ``<run>.metrics.json``. Metrics are empty when the dataset
    ships no qrels and none are given (the run is still written). An existing finished run is rescored,
    not recomputed, unless ``overwrite``. ``strict`` refuses a docid repeated in a query's hits (otherwise its
    first occurrence is kept, with one warning). Queries cut to the reranker's budget get one warning per run.

    ``shuffle_input`` (``"reverse"`` or a seed, see :mod:`perank.shuffle`) permutes each query's candidates
    before the reranker sees them; the run's name and recorded settings carry it, so it is a run of its own.
    """
    name = dataset_label(dataset, retrieval_results)  # unknown names fail here, listing the known ones
    qrels_path = find_qrels(None if dataset is None else name, qrels)  # None: the run is written, not scored
    if isinstance(reranker, str):
        reranker = build_reranker(reranker, **(reranker_kwargs or {}))
    candidates = str(Path(retrieval_results).resolve()) if retrieval_results is not None else retriever
    identity = RunIdentity.of(reranker, run_name).on(
        dataset=name, retriever=retriever, candidates=candidates, topk=topk, shuffle_input=shuffle_input
    )
    label = identity.label
    out_dir = Path(output_dir) if output_dir is not None else default_output_dir()
    run_path = out_dir / run_file_name(name, label, topk)
    header = identity.header()
    if world.sharded:
        check_ranks_agree(world, identity, batch_size)

    rescore = decided_by_main(world, lambda: _plan(run_path, identity, overwrite, world, batch_size))
    requests: list[Request] = []
    results: list[Result] | None = None  # None: rescore the finished run (or, sharded, not rank 0)
    shards: list[list[Result]] | None = None  # sharded, on rank 0: every rank's results
    if not rescore:
        requests = main_first(
            world,
            lambda: load_candidates(
                name,
                retriever=retriever,
                topk=topk,
                retrieval_results=retrieval_results,
                backend=backend,
                strict=strict,
            ),
        )
        if shuffle_input is not None:
            requests = shuffled(requests, shuffle_input)
        rerank_kwargs = {"batch_size": batch_size, "header": header, "show_progress": show_progress}
        if world.sharded:
            shards = rerank_sharded(reranker, requests, run_path, world, desc=f"{name} {label}", **rerank_kwargs)
        else:
            results = rerank_resumable(
                reranker, requests, partial_path(run_path), desc=f"{name} {label}", **rerank_kwargs
            )

    def finish() -> tuple[dict[str, float], dict[str, Any] | None]:
        merged = merge_shards(requests, shards) if shards is not None else results
        return _save_and_score(run_path, merged, header, label, name, qrels_path, complete)

    metrics, accounting = decided_by_main(world, finish)
    # only now: the run and its accounting are safely on disk (each rank removes its own progress)
    rank_progress_path(run_path, world.rank, world.size).unlink(missing_ok=True)

    if world.is_main:
        print(f"{name}: {run_path}")
        if metrics:
            print(format_metrics(metrics))
        if accounting is not None:
            note = cut_queries_note(accounting, reranker.budgets().query)
            if note:
                logger.warning("%s: %s", name, note)
            med = accounting["medians"]
            print(
                f"median per query: {med['latency_s']:.3f} s, {med['tokens_processed']:.0f} tokens processed, "
                f"{med['tokens_generated']:.0f} generated"
            )
            windows = window_counts(accounting["per_query"])
            if windows is not None:
                print(windows.note())
    return run_path, metrics


def _save_and_score(
    run_path: Path,
    results: list[Result] | None,
    header: dict[str, Any],
    label: str,
    name: str,
    qrels_path: Path | None,
    complete: bool,
) -> tuple[dict[str, float], dict[str, Any] | None]:
    """Write the run (unless only rescoring: ``results`` is None), score it and save the metrics JSON."""
    accounting = None
    if results is not None:
        write_trec_run(run_path, results, tag=label)
        accounting = summarize_stats(results) | {"peak_memory_mb": peak_memory_mb()}
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
        print(f"no qrels for {name}: run written to {run_path}, not scored")
    if accounting is not None:
        fields["accounting"] = accounting
    update_metrics_json(metrics_path(run_path), fields)
    return metrics, accounting
