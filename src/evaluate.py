"""Rerank and score: ``python src/evaluate.py --datasets dl19 dl20 --reranker NAME [--model-path P]``.

A thin launcher so the command works from any directory without installing the package.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perank.cli.evaluate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
