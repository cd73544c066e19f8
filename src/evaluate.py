"""Rerank and score: ``python src/evaluate.py --datasets dl19 dl20 --reranker NAME [--model-path P]``.

The PE-Rank repository's command line, kept as a launcher of :mod:`perank.cli.evaluate` (``perank evaluate``).
Python puts this file's folder, ``src/``, first on the module path, so the command imports this checkout's
package from any working directory, installed or not.
"""

import sys

from perank.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
