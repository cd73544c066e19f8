"""Where the benchmarks find the repository, its default checkpoints and their results folder.

Everything is anchored on this package, not on the working directory, so the benchmarks run from any folder.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
BENCHMARKS_DIR = PACKAGE_DIR.parent
REPO_ROOT = BENCHMARKS_DIR.parent
#: the launcher every benchmark (and every worker process of one) is started through
RUN_SCRIPT = BENCHMARKS_DIR / "run.py"
RESULTS_DIR = BENCHMARKS_DIR / "results"

DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "pe-rank-smollm2-minilm"
SHIPPED_UNTRAINED = REPO_ROOT / "checkpoints" / "pe-rank-smollm2-minilm-untrained"


def short_path(path: str | Path) -> str:
    """A path relative to the repository when it is inside it (portable in the committed record)."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT)) if Path(path).exists() else str(path)
    except ValueError:
        return str(path)
