"""The systems of a comparison: which run files the command line names, what each is called, and the checks that
keep a table honest (two systems at least, one name each, runs of the qrels' dataset, finite scores).

A system is a TREC run plus, when it has one, the metrics JSON beside it (dataset, settings, accounting). The
command line may name the run, its metrics JSON, or a glob matching both (``results/reranking_results/eval_dl19_*``):
each run is taken once, and the progress files of unfinished runs are skipped with a note. A system is called by
its run's label (``eval_dl19_<label>_top100.txt`` -> ``<label>``, :func:`perank.runs.label_of_run_file`); ``--name
OLD=NEW`` renames one (OLD: its name or its run's path).
"""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perank.io import read_trec_run
from perank.metrics import read_metrics_json
from perank.runs import label_of_run_file
from perank.types import InputError

_METRICS = ".metrics.json"
_SKIPPED = (".partial.jsonl", ".tmp")


@dataclass
class System:
    """One compared system: its ``name`` (``label``, the run's own, unless renamed), run file and run
    (``{qid: {docid: score}}``), and ``recorded``, the metrics JSON beside the run (``{}`` for a TREC file from
    elsewhere)."""

    name: str
    path: Path
    run: dict[str, dict[str, float]]
    recorded: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def accounting(self) -> Mapping[str, Any] | None:
        value = self.recorded.get("accounting")
        return value if isinstance(value, Mapping) else None


def run_files(inputs: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The run files the inputs name, each once, in the order given (a glob's matches sorted), and the notes of
    what was skipped. An input that names nothing is an error."""
    paths: list[Path] = []
    notes: list[str] = []
    seen: set[Path] = set()
    for text in inputs:
        pattern = any(ch in text for ch in "*?[") and not Path(text).exists()
        matches = sorted(glob.glob(text)) if pattern else [text]
        if not matches:
            raise InputError(f"{text}: no file matches")
        for match in matches:
            path = Path(match)
            if path.name.endswith(_SKIPPED):
                notes.append(f"skipped {path}: the progress file of an unfinished run")
                continue
            if path.is_dir():
                raise InputError(f"{path}: a folder; give run files, their metrics JSON, or a glob")
            run = path.with_name(path.name[: -len(_METRICS)]) if path.name.endswith(_METRICS) else path
            if not run.exists():
                what = f"the run of {path} ({run.name})" if run != path else str(run)
                raise InputError(f"{what}: file not found")
            if run.resolve() not in seen:
                seen.add(run.resolve())
                paths.append(run)
    return paths, notes


def _renames(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise InputError(f"--name {item!r}: expected OLD=NEW (OLD a system's name or its run file)")
        out[old.strip()] = new.strip()
    return out


def load_systems(paths: Sequence[Path], renames: Sequence[str] = ()) -> list[System]:
    """Read every run (a NaN or infinite score is refused with its file and line) and name it; two systems of
    one name are refused, since the table could not tell them apart."""
    wanted = _renames(renames)
    systems = []
    for path in paths:
        recorded = read_metrics_json(path)
        dataset = recorded.get("dataset") if isinstance(recorded.get("dataset"), str) else None
        name = label = label_of_run_file(path, dataset)
        for key in list(wanted):
            if key == name or Path(key).resolve() == path.resolve():
                name = wanted.pop(key)
                break
        systems.append(System(name=name, path=path, run=read_trec_run(path), recorded=recorded, label=label))
    if wanted:
        old = next(iter(wanted))
        raise InputError(
            f"--name {old}={wanted[old]}: no system is named {old!r} ({', '.join(s.name for s in systems)})"
        )
    if len(systems) < 2:
        given = f" ({systems[0].path})" if systems else ""
        raise InputError(f"compare needs at least two runs, got {len(systems)}{given}")
    by_name: dict[str, System] = {}
    for system in systems:
        if system.name in by_name:
            raise InputError(
                f"two runs are both named {system.name!r} ({by_name[system.name].path} and {system.path}); "
                f"rename one with --name {system.path}=NEW"
            )
        by_name[system.name] = system
    return systems


def check_judged(systems: Sequence[System], qrels: Mapping[str, Mapping[str, int]], qrels_name: str) -> None:
    """Refuse a run of another dataset: fewer than half of its queries judged in the qrels."""
    for system in systems:
        judged = len(set(system.run) & set(qrels))
        if 2 * judged < len(system.run):
            recorded = system.recorded.get("dataset")
            also = f", and its metrics JSON records dataset {recorded!r}" if recorded else ""
            raise InputError(
                f"system {system.name!r} ({system.path}): only {judged} of its {len(system.run)} queries are judged "
                f"in {qrels_name}{also}; is it a run of another dataset?"
            )
