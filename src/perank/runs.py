"""Run files: how a run is named, and the progress file it resumes from.

Reranking with an LLM takes hours on a CPU, so a run never loses finished work: the pipeline appends each
reranked query (fsynced) to ``<run>.partial.jsonl``, whose first line is a header of the run's settings;
a rerun with the same settings skips those queries. A crash can at worst truncate the progress file's
last line, which :func:`load_progress` then drops with a warning (that query is reranked again; none is
ever counted twice). These are kept apart from :mod:`perank.pipeline` because they are the on-disk
contract of a run (its file name and its progress format), which outlives any one pipeline invocation.
A sharded (torchrun) job keeps one progress file per rank, ``<run>.rank{r}-of-{n}.partial.jsonl``; a job
of another world size refuses them (:func:`unresumable_progress`) rather than mix shards.

Every result is checked against its request (same docids, each once) before it is saved or read back,
so a buggy reranker fails loudly, naming the query and the document, instead of producing a run that
silently scores documents that were never candidates.
"""

from __future__ import annotations

import glob
import json
import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from perank.datasets import results_dir
from perank.io import atomic_write
from perank.ranking.base import BaseReranker
from perank.ranking.options import constructor_parameters
from perank.types import Candidate, InputError, Request, Result

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------------------------------
# naming
# --------------------------------------------------------------------------------------------------


#: options that name the model rather than a setting: the model is the label's first part already
_MODEL_OPTIONS = frozenset({"model_path", "model", "llm", "tokenizer", "model_base"})


def run_label(reranker: BaseReranker) -> str:
    """The ``{label}`` of a run's file name: the model, then every option given that changes the ranking.

    The model part is ``describe()["run_label"]`` when a family sets it (``dense-all-MiniLM-L6-v2``); else the
    last path component of ``describe()["model"]`` or ``["model_path"]``, as the original PE-Rank names runs
    (``liuqi6777/pe-rank-mistral-jina`` -> ``pe-rank-mistral-jina``), prefixed with the family's name when it
    does not start with it (``listwise-text-pe-rank-smollm2-minilm``); else the family's name. Then each
    option the reranker was built with (:attr:`BaseReranker.options`) that is not volatile and differs from
    the constructor's default is appended as ``+key-value`` (``+window_size-10``; ``--max-query-length 64``
    gives ``+max_query_length-64``), so two settings never share a file. Characters unsafe in file names become
    ``-``.
    """
    info = reranker.describe()
    name = reranker.name or type(reranker).__name__
    label = info.get("run_label")
    if not label:
        model = info.get("model") or info.get("model_path")
        component = Path(str(model).rstrip("/")).name if model else ""
        label = component if component.startswith(name) else f"{name}-{component}" if component else name
    defaults = {k: p.default for k, p in constructor_parameters(type(reranker)).items()}
    for key, value in sorted(reranker.options.items()):
        if key in _MODEL_OPTIONS or key in reranker.volatile_settings:
            continue
        if isinstance(value, str | int | float | bool) and value != defaults.get(key, object()):
            label += f"+{key}-{value}"
    return safe_name(str(label))


def recorded_settings(reranker: BaseReranker) -> dict[str, Any]:
    """What a run records of its reranker: ``describe()``, plus ``max_query_length`` when ``--max-query-length``
    was given. A family's default query budget is not recorded (like the file name, which carries only options
    given), so the runs made before budgets existed keep their identity; the per-query accounting records every
    cut (``truncated_queries``)."""
    info = reranker.describe()
    if reranker.query_length_override is not None:
        info.setdefault("max_query_length", reranker.query_length_override)
    return info


def run_settings(reranker_info: dict[str, Any], volatile: frozenset[str]) -> dict[str, Any]:
    """What identifies a run: the reranker's recorded ``describe()`` without the settings that do not change
    the ranking (batch sizes, caches, device)."""
    return {k: v for k, v in comparable(reranker_info).items() if k not in volatile}


def settings_differences(
    recorded: dict[str, Any], current: dict[str, Any], labels: tuple[str, str] = ("run", "now")
) -> list[str]:
    """``key: recorded (run) vs current (now)`` for every setting that differs (``absent`` when missing);
    ``labels`` name the two sides (``("rank 0", "rank 1")`` when ranks of one job disagree)."""

    def show(settings: dict[str, Any], key: str) -> str:
        return repr(settings[key]) if key in settings else "absent"

    return [
        f"{k}: {show(recorded, k)} ({labels[0]}) vs {show(current, k)} ({labels[1]})"
        for k in sorted(set(recorded) | set(current))
        if k not in recorded or k not in current or recorded[k] != current[k]
    ]


def safe_name(text: str) -> str:
    """``text`` with every run of characters unsafe in a file name replaced by ``-`` (never empty)."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-") or "run"


def default_output_dir() -> Path:
    """``results/reranking_results/`` (under ``$PERANK_RESULTS`` when set)."""
    return results_dir() / "reranking_results"


def run_file_name(dataset: str, label: str, topk: int) -> str:
    """``eval_{dataset}_{label}_top{topk}.txt``, as the original PE-Rank names its runs."""
    return f"eval_{dataset}_{safe_name(label)}_top{topk}.txt"


_RUN_FILE = re.compile(r"eval_(?P<rest>.+)_top\d+\.txt")
#: suffixes dropped from the name of a run file that :func:`run_file_name` did not name
_RUN_SUFFIXES = (".txt", ".trec", ".run", ".tsv")


def label_of_run_file(path: PathLike, dataset: str | None = None) -> str:
    """A run's ``{label}`` read back from its file name, the inverse of :func:`run_file_name`:
    ``eval_dl19_dense-all-MiniLM-L6-v2_top100.txt`` -> ``dense-all-MiniLM-L6-v2``.

    ``dataset`` (recorded in the metrics JSON) is stripped exactly when given, since one's own candidates may
    name a dataset with underscores; otherwise the dataset is taken to end at the first ``_``. A file named
    otherwise (a TREC run from elsewhere) gives its name without a run suffix (``bm25.trec`` -> ``bm25``).
    """
    name = Path(path).name
    match = _RUN_FILE.fullmatch(name)
    if match is None:
        for suffix in _RUN_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                return name[: -len(suffix)]
        return name
    rest = match.group("rest")
    prefix = f"{safe_name(dataset)}_" if dataset else None
    if prefix and rest.startswith(prefix) and len(rest) > len(prefix):
        return rest[len(prefix) :]
    _, sep, tail = rest.partition("_")
    return tail if sep and tail else rest


def partial_path(run_path: PathLike) -> Path:
    """The progress file of a run: its full name plus ``.partial.jsonl``, beside it."""
    run_path = Path(run_path)
    return run_path.with_name(run_path.name + ".partial.jsonl")


def rank_progress_path(run_path: PathLike, rank: int, world_size: int) -> Path:
    """The progress file of one rank of a sharded run, ``<run>.rank{r}-of-{n}.partial.jsonl``; for one process
    (``world_size`` 1) the run's usual progress file. Each rank appends only to its own, so no two processes
    ever write one file, and the world size in the name tells a restart whether it can resume them."""
    if world_size == 1:
        return partial_path(run_path)
    run_path = Path(run_path)
    return run_path.with_name(f"{run_path.name}.rank{rank}-of-{world_size}.partial.jsonl")


_RANK_SUFFIX = re.compile(r"\.rank(\d+)-of-(\d+)\.partial\.jsonl")


def progress_files(run_path: PathLike) -> dict[Path, int]:
    """Every progress file of the run on disk, with the world size of the job that wrote it (1: one process)."""
    run_path = Path(run_path)
    found: dict[Path, int] = {}
    if partial_path(run_path).exists():
        found[partial_path(run_path)] = 1
    if run_path.parent.is_dir():
        for path in sorted(run_path.parent.glob(glob.escape(run_path.name) + ".rank*-of-*.partial.jsonl")):
            match = _RANK_SUFFIX.fullmatch(path.name[len(run_path.name) :])
            if match:
                found[path] = int(match.group(2))
    return found


def _shard_batch_size(path: Path) -> int | None:
    """The ``--batch-size`` recorded in a rank file's header (``None`` when unreadable: load_progress judges)."""
    try:
        with open(path, encoding="utf-8") as handle:
            header = json.loads(handle.readline())["_header"]
        return int(header["shard"]["batch_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def unresumable_progress(run_path: PathLike, world_size: int, batch_size: int) -> dict[Path, str]:
    """The run's progress files this job cannot resume, each with the reason.

    A sharded job's queries are split by rank and batch, so progress saved by a job of another world size
    (or, sharded, another ``--batch-size``) belongs to other shards: resuming it would lose or double queries.
    """
    out: dict[Path, str] = {}
    for path, size in progress_files(run_path).items():
        if size != world_size:
            out[path] = (
                f"was saved by a job of {size} process{'es' if size > 1 else ''} ({path.name}) and this job has "
                f"{world_size}: rerun with {size} process{'es' if size > 1 else ''} to resume it"
            )
        elif size > 1:
            recorded = _shard_batch_size(path)
            if recorded is not None and recorded != batch_size:
                out[path] = (
                    f"was saved with --batch-size {recorded} ({path.name}) and this job has --batch-size "
                    f"{batch_size}: rerun with --batch-size {recorded} to resume it"
                )
    return out


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


def comparable(obj: Any) -> Any:
    """JSON round trip, so a header read back compares equal to the one built in memory."""
    return json.loads(json.dumps(obj, default=str, sort_keys=True))


def progress_header(header: dict[str, Any]) -> dict[str, Any]:
    """The first line of a progress file: the run's settings, which a resumed run must match."""
    return {"_header": comparable(header)}
