"""Score a TREC run: ``python src/scripts/trec_eval.py --dataset dl19 --ranking RUN [--qrels FILE]``.

The PE-Rank repository's command line, kept as a launcher of :mod:`perank.cli.trec_eval` (``perank trec-eval``).
This folder is not the package's, so the package must be installed (``make venv`` or ``pip install -e .``);
without it the command says so in one line instead of a traceback.
"""

import sys

try:
    from perank.cli.trec_eval import main
except ModuleNotFoundError as exc:
    if exc.name != "perank":
        raise
    print("error: the perank package is not installed; run `make venv` (or `pip install -e .`)", file=sys.stderr)
    sys.exit(2)

if __name__ == "__main__":
    sys.exit(main())
