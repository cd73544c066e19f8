"""Entry point kept at the original's path: ``deepspeed src/train.py ...`` / ``python src/train.py ...``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perank.cli.train import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
