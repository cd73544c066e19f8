"""How long does ``perank compare`` take on 10 runs? (It should take seconds.)

Builds ``--runs`` synthetic DL19 runs (the shipped BM25 top-100, each query's scores perturbed with seeded noise of a
growing size, every run with a metrics JSON holding per-query accounting as ``evaluate.py`` writes it), then times
``python -m perank.compare`` on all of them, as a user runs it (process start and imports included), with the
t-test, with the randomization test (10,000 sign flips per system and measure), and with ``--per-query``. Each
setting runs ``--repeats`` times; the median wall time is reported.

    python benchmarks/run.py compare_runs      # writes benchmarks/results/compare_runs.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from perank.accounting import summarize_per_query
from perank.datasets import data_dir
from perank.io import atomic_write, read_trec_run
from perank.metrics import metrics_path
from perank.runs import run_file_name
from perank_bench.paths import RESULTS_DIR
from perank_bench.workers import child_env

SETTINGS = {"t-test": [], "randomization": ["--test", "randomization"], "t-test, --per-query": ["--per-query"]}


def synthetic_runs(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` runs over the DL19 BM25 candidates: run i reorders each query by its rank plus noise of scale i."""
    bm25 = read_trec_run(data_dir() / "msmarco-passage" / "trec_results_dl19.txt")
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / run_file_name("dl19", f"synthetic-{i:02d}", 100)
        per_query = {}
        with atomic_write(path) as handle:
            for qid, scores in bm25.items():
                order = sorted(scores, key=lambda d: -scores[d])
                noisy = -np.arange(len(order)) + rng.normal(0, 2.0 * i + 1e-3, len(order))
                for rank, j in enumerate(np.argsort(-noisy), start=1):
                    handle.write(f"{qid} Q0 {order[j]} {rank} {float(noisy[j])!r} synthetic-{i:02d}\n")
                per_query[qid] = {"latency_s": float(rng.lognormal(i / 3, 0.3)), "tokens_processed": 100 * i}
        meta = {"dataset": "dl19", "topk": 100, "accounting": summarize_per_query(per_query)}
        with atomic_write(metrics_path(path)) as handle:
            handle.write(json.dumps(meta))
        paths.append(path)
    return paths


def time_compare(paths: list[Path], extra: list[str], output: Path) -> float:
    """Wall seconds of one ``python -m perank.compare`` over ``paths``."""
    env = child_env()  # the perank this process imported, so the timed one is the checkout's
    command = [sys.executable, "-m", "perank.compare", *map(str, paths), "--dataset", "dl19", "-o", str(output), *extra]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="run.py compare_runs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = ap.parse_args(argv)
    load = os.getloadavg()[0]  # the machine may be shared: the record says how busy it was
    with tempfile.TemporaryDirectory() as tmp:
        paths = synthetic_runs(Path(tmp), args.runs)
        times = {
            name: [time_compare(paths, extra, Path(tmp) / "report") for _ in range(args.repeats)]
            for name, extra in SETTINGS.items()
        }
    result = {
        "runs": args.runs,
        "queries": 43,
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average_1min": load,
        "median_wall_s": {name: statistics.median(t) for name, t in times.items()},
        "wall_s": times,
    }
    lines = [
        f"# `perank compare` on {args.runs} DL19 runs (43 queries, 5 measures)",
        "",
        f"{result['machine']}, load average {load:.1f} at the start; median of {args.repeats} runs of "
        "`python -m perank.compare`, process start and imports included.",
        "",
        "| setting | median wall s |",
        "| --- | --- |",
        *(f"| {name} | {s:.2f} |" for name, s in result["median_wall_s"].items()),
    ]
    args.output_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.output_dir / "compare_runs.json") as handle:
        handle.write(json.dumps(result, indent=2) + "\n")
    with atomic_write(args.output_dir / "compare_runs.md") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0
