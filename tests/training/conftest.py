"""Fixtures of the training tests only (the tiny models and the ranking rows are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture(scope="session")
def align_row(training_passages: list[str]) -> Callable[..., dict]:
    """``align_row(i=0)``: an alignment row (stage 1) asking to reconstruct the passage ``training_passages[i]``."""

    def row(i: int = 0) -> dict:
        p = training_passages[i]
        return {
            "messages": [
                {"role": "user", "content": "Please reconstruct the passage represented by [<PLACEHOLDER>]."},
                {"role": "assistant", "content": p},
            ],
            "extra_texts": [p],
        }

    return row
