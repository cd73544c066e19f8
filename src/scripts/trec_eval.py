"""Score a TREC run: ``python src/scripts/trec_eval.py --dataset dl19 --ranking RUN [--qrels FILE]``.

A thin launcher so the command works from any directory without installing the package.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perank.cli.trec_eval import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
