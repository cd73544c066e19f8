"""The "Adding a family" example of docs/architecture.md runs as written and gets the core's behaviour."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from perank import Reranker
from perank.ranking import registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def example_source() -> str:
    section = DOC.read_text().split("## Adding a family", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture()
def first_stage_family():
    namespace: dict[str, object] = {}
    exec(compile(example_source(), str(DOC), "exec"), namespace)  # noqa: S102  (our own docs)
    try:
        yield namespace["FirstStageScoreReranker"]
    finally:
        registry._REGISTRY.pop("first-stage-score", None)


def test_the_example_is_as_small_as_the_docs_say() -> None:
    code = [line for line in example_source().splitlines() if line.strip()]
    claimed = int(re.search(r"That is (\d+) lines of code", DOC.read_text()).group(1))
    assert len(code) == claimed


def test_the_example_family_ranks_through_the_facade(first_stage_family) -> None:
    ranker = Reranker("first-stage-score", scores={"a": 1.0, "b": 3.0, "c": 2.0})
    assert isinstance(ranker.family, first_stage_family)
    result = ranker.rank("q", ["a", "b", "c", "unknown"])
    assert [c.text for c in result.candidates] == ["b", "c", "a", "unknown"]
    assert result.stats["tokens_processed"] == 0 and result.stats["tokens_generated"] == 0
    assert ranker.compute_score([("q", "b"), ("q", "a")]) == [3.0, 1.0]
    assert ranker.compute_score(("q", "c"), normalize=True) == pytest.approx([1 / (1 + 2.718281828**-2)])
