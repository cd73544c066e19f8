"""Which real checkpoint the benchmark times by default, and how to find the PE-Rank model inside a reranker."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from perank_bench.paths import DEFAULT_CHECKPOINT, SHIPPED_UNTRAINED
from perank_bench.workers import child_env

logger = logging.getLogger(__name__)


def default_model_path(llm: str, encoder: str) -> Path:
    """The trained small checkpoint when present, else an untrained PE-Rank (shipped, or assembled once).

    An untrained model ranks close to randomly, but its speed is a trained one's: enough to time.
    """
    small = (llm, encoder) == ("smollm2", "all-minilm-l6-v2")
    if small and (DEFAULT_CHECKPOINT / "perank_config.json").exists():
        return DEFAULT_CHECKPOINT
    from perank.backends.resolve import cache_dir

    target = cache_dir() / "bench" / f"pe-rank-{llm}-{encoder}-untrained"
    if small and (SHIPPED_UNTRAINED / "perank_config.json").exists():
        return SHIPPED_UNTRAINED
    if (target / "perank_config.json").exists():
        return target
    logger.info("no trained checkpoint; assembling an untrained PE-Rank into %s", target)
    cmd = [sys.executable, "-m", "perank.cli.assemble", "--llm", llm, "--encoder", encoder, "--output", str(target)]
    subprocess.run(cmd, check=True, env=child_env())
    return target


def find_perank_model(reranker: Any) -> Any:
    """The PERankModel a reranker holds (for the time breakdown and the embedding cache), or None."""
    from perank.families.pe_rank.model import PERankModel

    for value in vars(reranker).values():
        if isinstance(value, PERankModel):
            return value
    return None
