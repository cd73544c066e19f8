"""Fixtures of the training tests only (the tiny models and the ranking rows are in tests/conftest.py)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.paths import REPO
from perank.training.runner import RunArguments, get_runner


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


def _recipe_arguments(family: str, data_path: Path, output_dir: Path, max_steps: int = 5) -> RunArguments:
    script = REPO / "recipes" / family.replace("-", "_") / "train_small.sh"
    command = script.read_text(encoding="utf-8").split("$PY src/train.py", 1)[1].split('"$@"', 1)[0]
    argv = shlex.split(command.replace("\\\n", " "))
    values = {"--data_path": str(data_path), "--max_steps": str(max_steps), "--output_dir": str(output_dir)}
    argv = [values[argv[i - 1]] if "$" in a else a for i, a in enumerate(argv)]
    assert argv[:2] == ["--family", family], f"{script} trains {argv[:2]}"
    runner = get_runner(family)
    args = runner.parse(argv[2:])
    runner.validate(args)
    return args


@pytest.fixture(scope="session")
def recipe_arguments() -> Callable[..., RunArguments]:
    """``recipe_arguments(family, data_path, output_dir, max_steps=5)``: the flags that
    ``recipes/<family>/train_small.sh`` (``_`` for ``-``) passes to ``src/train.py``, its shell variables given
    these values, parsed and validated by the family's runner: a recipe's flags are checked without training."""
    return _recipe_arguments
