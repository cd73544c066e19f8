"""Reading training JSONL so that every problem names its file and line, and all of them surface at once.

Training rows are validated before the first step: a bad row must never be trained on silently or surface
hours into a run, and a file with many bad rows should be fixable in one pass, so row errors are collected
(:class:`RowErrors`) and raised together, the first :data:`MAX_REPORTED_ERRORS` in full plus a count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from perank.types import InputError

MAX_REPORTED_ERRORS = 20


def read_jsonl(path: str | Path) -> list[tuple[int, Any]]:
    """(line number, parsed object) for every non-empty line (a UTF-8 BOM is skipped); malformed JSON is an error
    naming the line."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: training data file not found")
    rows: list[tuple[int, Any]] = []
    with open(path, encoding="utf-8-sig") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append((lineno, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from exc
    if not rows:
        raise InputError(f"{path}: no training rows")
    return rows


class RowErrors:
    """Collects row errors and raises them together (the first MAX_REPORTED_ERRORS, plus a count)."""

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self.items: list[str] = []
        self.count = 0

    def add(self, lineno: int, msg: str) -> None:
        """Record one bad row (only the first MAX_REPORTED_ERRORS keep their message)."""
        self.count += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append(f"{self.path}:{lineno}: {msg}")

    def raise_if_any(self) -> None:
        """Raise one InputError listing the recorded rows, if there are any."""
        if self.count:
            more = f"\n... and {self.count - len(self.items)} more" if self.count > len(self.items) else ""
            raise InputError(f"{self.count} bad training row(s):\n" + "\n".join(self.items) + more)
