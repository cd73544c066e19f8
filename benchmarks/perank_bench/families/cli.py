"""The families benchmark's command line: ``python benchmarks/run.py families ...`` (see benchmarks/README.md).

Two modes: the driver (default: one fresh process per configuration, the record rewritten after each) and the
hidden ``--worker`` mode in which the driver runs one configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import time
from pathlib import Path
from typing import Any

from perank_bench.families.configs import FAMILY_CONFIGS, parse_sets, select_configs
from perank_bench.paths import RESULTS_DIR
from perank_bench.workers import machine, run_in_subprocess

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="run.py families", description="Latency and nDCG@10 of every reranker family on one dataset"
    )
    p.add_argument("--dataset", default="dl19")
    p.add_argument("--retrieval-results", default=None, help="candidates file (default: the dataset's BM25 run)")
    p.add_argument("--qrels", default=None)
    p.add_argument("--topk", type=int, default=100)
    p.add_argument("--queries", type=int, default=43, help="timed queries, the file's first N (DL19 has 43)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker")
    p.add_argument("--only", default=None, help=f"comma-separated configurations (known: {','.join(FAMILY_CONFIGS)})")
    p.add_argument("--skip", default="", help="comma-separated configurations to leave out")
    p.add_argument("--set", action="append", default=[], metavar="NAME.key=value", help="an option (NAME or *)")
    p.add_argument("--timeout", type=float, default=None, help="seconds allowed per configuration")
    p.add_argument("--in-process", action="store_true", help="no subprocesses (peak RSS is then cumulative)")
    p.add_argument("--tag", default="cpu", help="file names: families_{tag}.json/.md/.png")
    p.add_argument("--output-dir", default=str(RESULTS_DIR))
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker-output", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def spec_for(name: str, args: argparse.Namespace, sets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What the worker of configuration ``name`` gets: plain JSON, so it crosses a process."""
    config = FAMILY_CONFIGS[name]
    return {
        "name": name,
        "reranker": config.reranker,
        "setting": config.setting,
        "options": {**config.options, **sets.get("*", {}), **sets.get(name, {})},
        "device": args.device,
        "threads": args.threads,
        "dataset": args.dataset,
        "retrieval_results": args.retrieval_results,
        "qrels": args.qrels,
        "topk": args.topk,
        "queries": args.queries,
    }


def run_one(spec: dict[str, Any], in_process: bool, timeout_s: float | None) -> dict[str, Any]:
    """One configuration's entry; raises RuntimeError (with the reason) when it fails."""
    if not in_process:
        return run_in_subprocess("families", spec, timeout_s)
    from perank_bench.families.worker import run_family

    try:
        return run_family(spec)
    except Exception as exc:  # one family's failure must not stop the others
        raise RuntimeError(f"configuration {spec['name']} failed ({type(exc).__name__}: {exc})") from exc


def main(argv: list[str] | None = None) -> int:
    """Run the configurations (or one worker); the record is the output (with why a configuration did not run)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    if args.worker:
        from perank_bench.families.worker import run_family

        try:
            entry = run_family(json.loads(args.worker))
        except Exception as exc:
            Path(args.worker_output).write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
            raise
        Path(args.worker_output).write_text(json.dumps(entry))
        return 0

    from perank.ranking.registry import get_reranker_class
    from perank_bench.families.report import write_outputs

    names = select_configs(args.only, args.skip)
    sets = parse_sets(args.set)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"families_{args.tag}"
    meta = {
        "tag": args.tag,
        "when": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(args.device),
        "dataset": args.dataset,
        "topk": args.topk,
        "queries": args.queries,
    }
    entries: list[dict[str, Any]] = []
    not_run: dict[str, str] = {}
    for name in names:
        spec = spec_for(name, args, sets)
        if get_reranker_class(spec["reranker"]) is None:
            not_run[name] = f"skipped: no reranker {spec['reranker']!r} is registered in this checkout"
            continue
        logger.info("running %s (%s)", name, spec["reranker"])
        try:
            entry = run_one(spec, args.in_process, args.timeout)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            logger.error("%s", exc)
            not_run[name] = f"failed: {exc}"
        else:
            entries.append(entry)
        write_outputs(entries, not_run, meta, stem, final=False)
    md = write_outputs(entries, not_run, meta, stem, final=True)
    print(md)
    return 0
