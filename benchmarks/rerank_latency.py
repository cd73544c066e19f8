"""Launcher for the rerank latency benchmark, runnable from any folder: ``python benchmarks/rerank_latency.py``.

The code is the package ``benchmarks/rerank_latency/`` (see benchmarks/README.md). Python puts this script's
folder first on ``sys.path``, and a package wins over a module of the same name there, so the import below is
the package, not this file.
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # e.g. run through runpy.run_path
    sys.path.insert(0, _HERE)

from rerank_latency.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
