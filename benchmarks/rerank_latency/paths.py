"""Where the benchmark finds the repository, its default checkpoint and its results folder.

Everything is anchored on this file, not on the working directory, so the benchmark runs from any folder.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: the folder holding this package: on a child process's PYTHONPATH so that ``-m rerank_latency`` finds it
BENCHMARKS_DIR = PACKAGE_DIR.parent
REPO_ROOT = BENCHMARKS_DIR.parent
SRC_DIR = REPO_ROOT / "src"

DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "pe-rank-smollm2-minilm"
SHIPPED_UNTRAINED = REPO_ROOT / "checkpoints" / "pe-rank-smollm2-minilm-untrained"
RESULTS_DIR = BENCHMARKS_DIR / "results"


def short_path(path: str | Path) -> str:
    """A path relative to the repository when it is inside it (portable in the committed record)."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT)) if Path(path).exists() else str(path)
    except ValueError:
        return str(path)


def child_env() -> dict[str, str]:
    """The environment of a child process: offline hub, and both ``src/`` and this package importable.

    ``src/`` goes first so the benchmark measures this checkout's package even when another is installed.
    """
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    paths = [str(SRC_DIR), str(BENCHMARKS_DIR)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env
