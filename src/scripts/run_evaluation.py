"""First-stage retrieval: ``python src/scripts/run_evaluation.py --dataset dl19 --retriever bm25 --topk 100``.

A thin launcher so the command works from any directory without installing the package.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perank.cli.run_evaluation import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
