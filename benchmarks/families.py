"""Launcher for the every-family benchmark, runnable from any folder: ``python benchmarks/families.py``.

The code is the package ``benchmarks/families/`` (see benchmarks/README.md); Python puts this script's folder
first on ``sys.path`` and a package wins over a module of the same name there, so the import is the package.
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # e.g. run through runpy.run_path
    sys.path.insert(0, _HERE)

from families.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
