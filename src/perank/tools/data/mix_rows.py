"""Mix stage-2 training files into one shuffled file, keeping at most N windows per query from each.

    perank mix-train-rows a.jsonl:1 b.jsonl:3 -o train.jsonl --seed 0

Capping windows per query is how a mix favours *distinct queries* over more windows of the same few
queries (what made the first small model memorise DL20). Which windows are kept is random but
deterministic with ``--seed``; the output order is shuffled the same way.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

from perank.cli.errors import run_guarded
from perank.io import atomic_write


def parse_source(spec: str) -> tuple[Path, int]:
    """``path:N`` -> (path, N); a bare path keeps every window."""
    path, sep, n = spec.rpartition(":")
    if not sep or not n.isdigit():
        return Path(spec), 0
    return Path(path), int(n)


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="perank mix-train-rows", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("sources", nargs="+", help="FILE.jsonl[:N] (N windows per query at most; 0 or absent = all)")
    ap.add_argument("--output", "-o", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    rows: list[str] = []
    for spec in args.sources:
        path, cap = parse_source(spec)
        by_qid: dict[str, list[str]] = defaultdict(list)
        with open(path, encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    by_qid[str(json.loads(line)["qid"])].append(line if line.endswith("\n") else line + "\n")
                except (json.JSONDecodeError, KeyError) as exc:
                    raise SystemExit(f"{path}:{lineno}: not a training row with a 'qid' ({exc})") from exc
        kept = 0
        for qid in sorted(by_qid):
            windows = by_qid[qid]
            chosen = rng.sample(windows, min(cap, len(windows))) if cap else windows
            rows.extend(chosen)
            kept += len(chosen)
        print(f"{path}: {kept} windows from {len(by_qid)} queries", file=sys.stderr)
    rng.shuffle(rows)
    with atomic_write(args.output) as handle:
        handle.writelines(rows)
    print(f"wrote {len(rows)} windows to {args.output}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``perank mix-train-rows``: :func:`run`, bad input or an unreadable file as one line and exit status 2."""
    return run_guarded(lambda: run(argv))
