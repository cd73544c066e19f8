#!/usr/bin/env python
"""Fuse TREC runs, or reorder a candidates file by a run: the old name of ``perank fuse`` and ``perank reorder``
(the code lives in :mod:`perank.fusion` and :mod:`perank.cli.fuse`).

    python scripts/fuse_runs.py fuse --method rrf A.trec B.trec -o fused.trec
    python scripts/fuse_runs.py fuse --method interp A.trec B.trec --tune-qrels dl20.qrels -o fused.trec
    python scripts/fuse_runs.py reorder --candidates bm25_dl19_top100.jsonl --run dense.trec -o dense_order.jsonl
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from perank.cli.fuse import main as fuse_main  # noqa: E402
from perank.cli.fuse import reorder_main  # noqa: E402
from perank.fusion import fuse, normalised, ranks_of, reorder  # noqa: E402, F401  (the names callers import from here)

COMMANDS = {"fuse": fuse_main, "reorder": reorder_main}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
