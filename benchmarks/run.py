"""Every benchmark, one launcher: ``python benchmarks/run.py NAME [options]`` (no NAME: the list).

The benchmarks are the package ``perank_bench`` beside this file (see benchmarks/README.md). Python puts this
file's folder first on the module path, so the package is found from any working directory; ``perank`` itself
must be installed (``make venv``) or on ``PYTHONPATH`` (``tests/gpu/gpu_check.sh`` sets ``PYTHONPATH=src`` on a
machine without the virtualenv). Each configuration's worker process is started through this same file.
"""

import sys

try:
    import perank  # noqa: F401  (checked first: its absence is one line, not a traceback from deep inside)
except ModuleNotFoundError as exc:
    if exc.name != "perank":
        raise
    print("error: the perank package is not importable; run `make venv` (or set PYTHONPATH=src)", file=sys.stderr)
    sys.exit(2)

from perank_bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
