"""``python benchmarks/run.py NAME [options]``: run one benchmark; without a name, list them.

Each benchmark module has ``main(argv) -> int`` and its own options (``run.py NAME --help``); the table below
is the only list of them.
"""

from __future__ import annotations

import importlib
import sys

#: benchmark name (its record's file stem under benchmarks/results/) -> (module, what it measures)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "rerank_latency": ("perank_bench.rerank_latency.cli", "is one token per passage faster? PE-Rank vs text"),
    "families": ("perank_bench.families.cli", "latency and nDCG@10 of every reranker family on one dataset"),
    "long_inputs": ("perank_bench.long_inputs", "time and peak memory of a long query against a normal one"),
    "compare_runs": ("perank_bench.compare_runs", "the wall time of `perank compare` on synthetic runs"),
    "arguana_bm25": ("perank_bench.arguana_bm25", "the offline BM25 against Pyserini's published ArguAna number"),
}


def usage() -> str:
    width = max(map(len, BENCHMARKS))
    lines = ["usage: python benchmarks/run.py NAME [options]   (NAME --help for its options)", "", "benchmarks:"]
    lines += [f"  {name:<{width}}  {what}" for name, (_, what) in BENCHMARKS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark the first argument names; exit status 2 (with the list) for no or an unknown name."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in BENCHMARKS:
        print(f"error: unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    return int(importlib.import_module(BENCHMARKS[name][0]).main(rest) or 0)
