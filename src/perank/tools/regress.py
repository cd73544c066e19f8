"""Regression scores of the shipped models (RankLLM's "two-click reproduction" idea): ``perank regress``.

``make regress`` runs it (``make regress REGRESS="--only dl19"`` passes options).

Each file ``results/expected/<model>__<dataset>.yaml`` records one exact ``evaluate.py`` command, the
measures it reported (at 4 decimals) and the nDCG@10 of a few of its queries. By default every expected
command is run again into a temporary folder and compared at 4 decimals; any difference (or an expected file
that is missing) prints a table of expected vs got and exits 1. ``--write`` (re)generates the files from runs,
and only then: ``--write --reuse results/reranking_results`` takes finished runs from that folder when their
recorded settings are this command's (the pipeline refuses a run made with other settings), reranking only
what is not there. ``--only NAME`` (repeatable) limits either mode to some files (``colbert-minilm__dl19``, or
a model ``colbert-minilm``, or a dataset ``dl19``).

The stored per-query values let ``tests/pipeline/test_regress.py`` rerank just two queries per file in seconds.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perank.cli.errors import run_guarded
from perank.datasets import REPO_ROOT
from perank.types import InputError

EXPECTED_DIR = REPO_ROOT / "results" / "expected"
DATASETS = ("dl19", "dl20")
#: the shipped models and the baselines, as ``evaluate.py`` reranker options
MODELS: dict[str, str] = {
    "bm25": "--reranker identity",
    "dense-all-MiniLM-L6-v2": "--reranker dense",
    "colbert-minilm": "--reranker colbert --model-path checkpoints/colbert-minilm",
    "e2rank-all-MiniLM-L6-v2": "--reranker e2rank",
    "e2rank-minilm": "--reranker e2rank --model-path checkpoints/e2rank-minilm",
    "listconranker-minilm": "--reranker listconranker --model-path checkpoints/listconranker-minilm",
    "pe-rank-smollm2-minilm": "--reranker pe-rank --model-path checkpoints/pe-rank-smollm2-minilm",
}
#: the per-query measure stored, and for how many queries
PER_QUERY_MEASURE = "ndcg_cut_10"
PER_QUERY_COUNT = 3
DECIMALS = 4


@dataclass(frozen=True)
class Spec:
    """One expected file: a model on a dataset's BM25 top-100."""

    model: str
    dataset: str

    @property
    def name(self) -> str:
        return f"{self.model}__{self.dataset}"

    @property
    def path(self) -> Path:
        return EXPECTED_DIR / f"{self.name}.yaml"

    @property
    def command(self) -> str:
        return f"python src/evaluate.py --datasets {self.dataset} --topk 100 {MODELS[self.model]}"


def all_specs() -> list[Spec]:
    return [Spec(model, dataset) for model in MODELS for dataset in DATASETS]


def select(specs: list[Spec], only: list[str] | None) -> list[Spec]:
    """The specs named by ``--only`` (a file name, a model or a dataset); all when not given."""
    if not only:
        return specs
    chosen = [s for s in specs if {s.name, s.model, s.dataset} & set(only)]
    unknown = [o for o in only if not any(o in {s.name, s.model, s.dataset} for s in specs)]
    if unknown:
        raise InputError(f"--only {unknown[0]}: no such expected file; choose from {', '.join(s.name for s in specs)}")
    return chosen


# --------------------------------------------------------------------------------------------------
# commands and measurements
# --------------------------------------------------------------------------------------------------


def parse_command(command: str) -> argparse.Namespace:
    """The ``evaluate.py`` options of an expected command, parsed by evaluate.py's own parser."""
    from perank.cli.evaluate import build_parser

    words = shlex.split(command)
    if words[:2] != ["python", "src/evaluate.py"]:
        raise InputError(f"expected command {command!r} does not start with 'python src/evaluate.py'")
    return build_parser().parse_args(words[2:])


def per_query(run_path: Path, qrels_path: Path, measure: str = PER_QUERY_MEASURE) -> dict[str, float]:
    """``measure`` of every judged query of a run, by qid, as pytrec_eval computes it for the averages."""
    import pytrec_eval

    from perank.io import read_qrels, read_trec_run

    run, qrels = read_trec_run(run_path), read_qrels(qrels_path)
    family, cutoff = measure.rsplit("_", 1)
    evaluator = pytrec_eval.RelevanceEvaluator(
        {q: {d: int(g) for d, g in docs.items()} for q, docs in qrels.items()}, {f"{family}.{cutoff}"}
    )
    scores = evaluator.evaluate({q: {d: float(s) for d, s in docs.items()} for q, docs in run.items()})
    return {qid: values[measure] for qid, values in scores.items()}


def measure(spec: Spec, output_dir: Path) -> dict[str, Any]:
    """Run the spec's command into ``output_dir``; its metrics and per-query values, rounded."""
    import json

    from perank.metrics import metrics_path

    words = shlex.split(spec.command)
    cmd = [sys.executable, *words[1:], "--output-dir", str(output_dir), "--no-progress"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{spec.name}: the command failed (exit {proc.returncode}): {proc.stderr.strip()[-600:]}")
    runs = [line.split(": ", 1)[1] for line in proc.stdout.splitlines() if line.startswith(f"{spec.dataset}: ")]
    if not runs:
        raise RuntimeError(f"{spec.name}: the command printed no run path")
    run_path = Path(runs[-1])
    recorded = json.loads(metrics_path(run_path).read_text(encoding="utf-8"))
    values = per_query(run_path, Path(recorded["qrels"]))
    return {
        "run": run_path.name,
        "num_queries": recorded["num_queries"],
        "metrics": {k: round(v, DECIMALS) for k, v in recorded["metrics"].items()},
        "per_query": {q: round(v, DECIMALS) for q, v in values.items()},
        "order": list(dict.fromkeys(line.split()[0] for line in run_path.read_text().splitlines())),
    }


# --------------------------------------------------------------------------------------------------
# expected files
# --------------------------------------------------------------------------------------------------


def stored_queries(measured: dict[str, Any]) -> dict[str, float]:
    """The queries whose value is stored: the first judged ones in run order whose value is neither 0 nor 1,
    so that a changed ranking shows (a perfect or empty top 10 hides most changes)."""
    values = measured["per_query"]
    informative = [q for q in measured["order"] if q in values and 0 < values[q] < 1]
    return {q: values[q] for q in informative[:PER_QUERY_COUNT]}


def write_expected(spec: Spec, measured: dict[str, Any]) -> None:
    import yaml

    from perank.io import atomic_write

    body = {
        "name": spec.name,
        "model": spec.model,
        "dataset": spec.dataset,
        "command": spec.command,
        "run": measured["run"],
        "num_queries": measured["num_queries"],
        "metrics": measured["metrics"],
        f"per_query_{PER_QUERY_MEASURE}": stored_queries(measured),
    }
    header = (
        f"# Expected scores of {spec.model} on {spec.dataset} (BM25 top-100), at {DECIMALS} decimals.\n"
        f"# Checked by `make regress`; regenerate with: perank regress --write --only {spec.name}\n"
    )
    with atomic_write(spec.path) as handle:
        handle.write(header + yaml.safe_dump(body, sort_keys=False, width=1000))


def load_expected(path: Path) -> dict[str, Any]:
    """An expected file, checked for the keys the comparison and the fast test read."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not YAML ({exc})") from exc
    keys = ("name", "dataset", "command", "metrics", f"per_query_{PER_QUERY_MEASURE}")
    missing = [k for k in keys if not isinstance(data, dict) or k not in data]
    if missing:
        raise InputError(f"{path}: no {missing[0]!r}")
    return data


def differences(expected: dict[str, Any], measured: dict[str, Any]) -> list[tuple[str, Any, Any, bool]]:
    """``(measure, expected, got, same)`` rows: every aggregate measure, then every stored query."""
    rows = [(k, v, measured["metrics"].get(k), measured["metrics"].get(k) == v) for k, v in expected["metrics"].items()]
    for qid, value in expected[f"per_query_{PER_QUERY_MEASURE}"].items():
        got = measured["per_query"].get(str(qid))
        rows.append((f"{PER_QUERY_MEASURE} q{qid}", value, got, got == value))
    return rows


def print_table(name: str, rows: list[tuple[str, Any, Any, bool]]) -> None:
    print(f"\n{name}")
    print(f"  {'measure':<28}{'expected':>10}{'got':>10}")
    for key, want, got, same in rows:
        print(f"  {key:<28}{want!s:>10}{got!s:>10}{'' if same else '   <-- differs'}")


# --------------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="perank regress", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--write", action="store_true", help="(re)generate the expected files from runs")
    ap.add_argument("--reuse", default=None, help="with --write: take finished runs with the same settings from here")
    ap.add_argument("--only", action="append", default=None, metavar="NAME", help="a file, model or dataset name")
    return ap


def run(args: argparse.Namespace) -> int:
    if args.reuse and not args.write:
        raise InputError("--reuse only applies with --write")
    specs = select(all_specs(), args.only)
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="regress-") as tmp:
        for spec in specs:
            if not args.write and not spec.path.exists():
                hint = f"perank regress --write --only {spec.name}"
                print(f"\n{spec.name}: MISSING {spec.path.relative_to(REPO_ROOT)} ({hint})")
                failed.append(spec.name)
                continue
            out = Path(args.reuse) if args.reuse else Path(tmp) / spec.name
            print(f"{spec.name}: {spec.command}", flush=True)
            try:
                measured = measure(spec, out)
            except RuntimeError as exc:
                print(f"  FAILED: {exc}")
                failed.append(spec.name)
                continue
            if args.write:
                write_expected(spec, measured)
                print(f"  wrote {spec.path.relative_to(REPO_ROOT)} (nDCG@10 {measured['metrics']['ndcg_cut_10']})")
                continue
            rows = differences(load_expected(spec.path), measured)
            print_table(spec.name, rows)
            if not all(same for *_, same in rows):
                failed.append(spec.name)
    if failed:
        print(f"\n{len(failed)} of {len(specs)} differ or failed: {', '.join(failed)}")
        return 1
    print(f"\nall {len(specs)} {'written' if args.write else 'match'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded(lambda: run(args))
