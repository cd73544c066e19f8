"""The tiny models' folders, as the fixture ``tiny_dirs`` (tests/conftest.py) gives them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TinyDirs:
    """Folders holding the tiny LLM (with tokenizer) and the tiny encoder (with tokenizer)."""

    llm: Path
    encoder: Path
