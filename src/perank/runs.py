"""Runs: what a run is (:class:`RunIdentity`), how its files are named, and where its progress is kept.

Two runs are one run when their identities agree: the same reranker settings (those that change the ranking)
on the same candidates. The identity names the run's file (``eval_{dataset}_{label}_top{k}.txt``), heads its
progress file and its metrics JSON, and is what a rerun is checked against before it resumes or rescores, and
what the ranks of a sharded job must agree on. These are kept apart from :mod:`perank.pipeline` because they are
the on-disk contract of a run, which outlives any one pipeline invocation; the progress file's contents are
:mod:`perank.progress`'s. A sharded (torchrun) job keeps one progress file per rank,
``<run>.rank{r}-of-{n}.partial.jsonl``; a job of another world size refuses them (:func:`unresumable_progress`)
rather than mix shards.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from perank.datasets import results_dir
from perank.ranking.base import QUERY_LENGTH_OPTION, BaseReranker
from perank.ranking.options import constructor_parameters
from perank.shuffle import shuffle_marker

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------------------------------
# naming
# --------------------------------------------------------------------------------------------------


#: options that name the model rather than a setting: the model is the label's first part already
_MODEL_OPTIONS = frozenset({"model_path", "model", "llm", "tokenizer", "model_base"})
#: what a run reranked, recorded before the reranker's settings (``shuffle_input``, only for a shuffled run, after)
_RERANKED = ("dataset", "retriever", "candidates", "topk")
_SHUFFLE = "shuffle_input"
#: of those, what two runs must share to be one run (``candidates`` names the retriever when no file was given)
_COMPARED = ("dataset", "candidates", "topk", _SHUFFLE)


@dataclass(frozen=True, eq=False)
class RunIdentity:
    """Who a run is: the one answer to "is this the same run?", for the file name, for resuming and rescoring,
    and across the ranks of a sharded job.

    - :attr:`label`: the ``{label}`` of the run's file name (:meth:`of`);
    - :attr:`settings`: what the run records of its reranker (the metrics JSON's ``reranker``): ``describe()``,
      plus ``max_query_length`` when it was given;
    - :attr:`reranked`: what it reranked (dataset, retriever, candidates, topk, shuffle_input; :meth:`on`);
    - :meth:`differences`: what differs from another identity, ignoring :attr:`volatile` settings (batch sizes,
      caches, device), which change speed and not the ranking; ``==`` holds when there is nothing.

    A reranker's identity is computed from the reranker alone (its ``describe()`` and the arguments its
    constructor was given, :attr:`BaseReranker.options`), so one built directly, through ``perank.Reranker`` or
    by ``evaluate.py`` with the same options has the same identity. Values are JSON (as read back from a file).
    """

    label: str
    settings: dict[str, Any]
    volatile: frozenset[str] = frozenset()
    reranked: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, reranker: BaseReranker, run_name: str | None = None) -> RunIdentity:
        """A reranker's identity; ``run_name`` (``--run-name``) replaces the label.

        The label's model part is ``describe()["run_label"]`` when a family sets it (``dense-all-MiniLM-L6-v2``);
        else the last path component of ``describe()["model"]`` or ``["model_path"]``, as the original PE-Rank
        names runs (``liuqi6777/pe-rank-mistral-jina`` -> ``pe-rank-mistral-jina``), prefixed with the family's
        name when it does not start with it (``listwise-text-pe-rank-smollm2-minilm``); else the family's name.
        Then each option the reranker was given that is not volatile and differs from the constructor's default
        is appended as ``+key-value`` (``+window_size-10``; ``max_query_length=64`` gives
        ``+max_query_length-64``), so two settings never share a file. Characters unsafe in file names become ``-``.

        The settings are ``describe()`` plus ``max_query_length`` when it was given (a family's default query
        budget is not recorded, like the file name carries only options given, so runs made before budgets
        existed keep their identity; the per-query accounting records every cut).
        """
        info = reranker.describe()
        settings = dict(info)
        if reranker.query_length_override is not None:
            settings.setdefault(QUERY_LENGTH_OPTION, reranker.query_length_override)
        label = safe_name(run_name) if run_name else _label(reranker, info)
        return cls(label, comparable(settings), frozenset(reranker.volatile_settings))

    def on(
        self, *, dataset: str, retriever: str, candidates: str, topk: int, shuffle_input: str | None = None
    ) -> RunIdentity:
        """This reranker's run on a dataset's candidates; a shuffled input (``shuffle_input``) is a run of its own,
        its label marked (``+shuffle-reverse``) and the shuffle recorded."""
        reranked = {"dataset": dataset, "retriever": retriever, "candidates": candidates, "topk": topk}
        label = self.label
        if shuffle_input is not None:  # only then: unshuffled runs keep the names and headers they had
            reranked[_SHUFFLE] = shuffle_input
            label += shuffle_marker(shuffle_input)
        return replace(self, label=label, reranked=comparable(reranked))

    def header(self) -> dict[str, Any]:
        """What the run records of itself: the progress file's header and the metrics JSON's settings, in the order
        runs have always recorded them."""
        reranked = {k: self.reranked[k] for k in _RERANKED if k in self.reranked}
        shuffle = {_SHUFFLE: self.reranked[_SHUFFLE]} if _SHUFFLE in self.reranked else {}
        return {**reranked, "reranker": dict(self.settings), **shuffle}

    def recorded(self, fields: Mapping[str, Any]) -> RunIdentity | None:
        """The identity a metrics JSON (``fields``) records for the run in this identity's file, compared with this
        one's volatile settings; ``None`` when it records no reranker settings."""
        if not isinstance(fields.get("reranker"), dict):
            return None
        reranked = {k: fields[k] for k in (*_RERANKED, _SHUFFLE) if k in fields}
        return replace(self, settings=comparable(fields["reranker"]), reranked=comparable(reranked))

    def ranking_settings(self) -> dict[str, Any]:
        """The reranker's settings that change the ranking (:attr:`settings` less the volatile ones)."""
        return {k: v for k, v in self.settings.items() if k not in self.volatile}

    def __eq__(self, other: object) -> bool:
        """Whether the two are one run (:meth:`differences` finds nothing)."""
        return isinstance(other, RunIdentity) and self._compared() == other._compared()

    def _compared(self) -> dict[str, Any]:
        return {"label": self.label, **{k: self.reranked.get(k) for k in _COMPARED}, **self.ranking_settings()}

    def differences(self, other: RunIdentity, sides: tuple[str, str] = ("run", "now")) -> list[str]:
        """``key: this (side 0) vs other (side 1)`` for everything that makes the two different runs (``absent``
        when one has no such setting); empty when they are one run. ``sides`` name the two
        (``("rank 0", "rank 1")`` when ranks of one job disagree)."""
        mine, theirs = self._compared(), other._compared()

        def show(settings: dict[str, Any], key: str) -> str:
            return repr(settings[key]) if key in settings else "absent"

        return [
            f"{k}: {show(mine, k)} ({sides[0]}) vs {show(theirs, k)} ({sides[1]})"
            for k in sorted(set(mine) | set(theirs))
            if k not in mine or k not in theirs or mine[k] != theirs[k]
        ]


def _label(reranker: BaseReranker, info: Mapping[str, Any]) -> str:
    """The label :meth:`RunIdentity.of` describes, from the reranker's ``describe()`` (``info``) and options."""
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


def comparable(obj: Any) -> Any:
    """JSON round trip, so a header read back compares equal to the one built in memory."""
    return json.loads(json.dumps(obj, default=str, sort_keys=True))
