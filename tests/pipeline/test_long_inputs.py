"""Bounded work for any input: a query or passage far longer than a family reads costs what its budget costs.

A 200,000-character query (a pasted document, a broken export) once ran the default PE-Rank for more than 11
minutes at 3.5 GB. Every family now declares its query budget (:meth:`BaseReranker.text_budgets`); the core cuts
the query to it, pre-cuts passages by characters, counts the cut per query and the pipeline says so once per run.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from helpers.catalogue import TINY
from helpers.paths import REPO
from perank.families.pe_rank.reranker import DEFAULT_CHECKPOINT
from perank.pipeline import run_pipeline
from perank.ranking.base import BaseReranker
from perank.ranking.budgets import MAX_CHARS_PER_TOKEN, TokenBudget
from perank.ranking.family import TinyFixtures
from perank.ranking.registry import reads_queries
from perank.runs import RunIdentity, comparable
from perank.types import Candidate, Query, Request

#: a pasted document: words, punctuation and some non-ASCII, 200,000 characters
LONG_QUERY = ("how long do fleas live? Les puces vivent 2-3 mois; 跳蚤的寿命. " * 4000)[:200_000]


@pytest.fixture(scope="module")
def fixtures(tiny_fixtures: TinyFixtures) -> TinyFixtures:
    return tiny_fixtures


def _candidates(path: Path, queries: dict[str, str]) -> Path:
    lines = []
    for qid, text in queries.items():
        hits = [
            {"content": f"fleas live for {i} months", "qid": qid, "docid": f"{qid}-d{i}", "score": 3.0 - i}
            for i in range(3)
        ]
        lines.append(json.dumps({"query": text, "hits": hits}))
    path.write_text("\n".join(lines) + "\n")
    return path


def _budget(reranker: BaseReranker) -> TokenBudget | None:
    return reranker.budgets().query


@pytest.mark.parametrize("name", sorted(TINY))
def test_a_200k_character_query_reranks_fast_and_is_noted_once(
    name: str, tiny_reranker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ranker = tiny_reranker(name)
    cands = _candidates(tmp_path / "long.jsonl", {"long": LONG_QUERY, "short": "how long do fleas live"})
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        run_path, _ = run_pipeline(None, ranker, retrieval_results=cands, output_dir=tmp_path, show_progress=False)
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"{name}: {elapsed:.1f} s for a 200k-character query"
    per_query = json.loads(Path(f"{run_path}.metrics.json").read_text())["accounting"]["per_query"]
    notes = [r.getMessage() for r in caplog.records if "cut to" in r.getMessage()]
    budget = _budget(ranker)
    if budget is None:  # a family that reads no query text (the first stage's order) has nothing to cut
        assert not reads_queries(type(ranker)) and notes == []
        assert per_query["long"]["truncated_queries"] == 0
    else:
        assert notes == [
            f"long: 1 query cut to {budget.max_tokens} tokens (the reranker's query budget; see --max-query-length)"
        ]
        assert per_query["long"]["truncated_queries"] == 1 and per_query["short"]["truncated_queries"] == 0
        assert per_query["long"]["tokens_processed"] < 50 * budget.max_tokens + 10_000
    assert len(run_path.read_text().splitlines()) == 6


@pytest.mark.parametrize("name", sorted(n for n in TINY if n != "identity"))
def test_max_query_length_overrides_the_budget_and_names_the_run(name: str, tiny_reranker, tmp_path: Path) -> None:
    default = tiny_reranker(name)
    short = tiny_reranker(name, max_query_length=3)
    assert short.budgets().query.max_tokens <= 3  # the decoder rerankers' budget holds "A: " + the query
    short_id, default_id = RunIdentity.of(short), RunIdentity.of(default)
    assert "+max_query_length-3" in short_id.label and "max_query_length" not in default_id.label
    # a run records the budget given (its identity), and nothing new when none is given (old runs still match)
    assert short_id.settings["max_query_length"] == 3 and default_id.settings == comparable(default.describe())
    request = Request(Query("q", "how long do fleas live in a warm house"), [Candidate("d", "fleas", 1.0)])
    assert short.rerank([request])[0].stats["truncated_queries"] == 1
    assert default.rerank([request])[0].stats["truncated_queries"] == 0
    assert short.rerank([request])[0].query.text == request.query.text  # the result keeps the user's text


def test_a_query_within_budget_is_passed_on_byte_for_byte(tiny_reranker) -> None:
    seen: list[str] = []
    ranker = tiny_reranker("pe-rank")
    inner = ranker.rerank_within_budget
    ranker.rerank_within_budget = lambda requests: seen.extend(r.query.text for r in requests) or inner(requests)
    text = "  how long do fleas live?  \t"
    ranker.rank(text, ["a", "b"])
    assert seen == [text]
    ranker.rank(LONG_QUERY, ["a", "b"])
    assert LONG_QUERY.startswith(seen[1]) and 0 < len(seen[1]) < len(LONG_QUERY)
    assert (
        len(ranker.model.tokenizer(seen[1], add_special_tokens=False)["input_ids"]) <= ranker.budgets().query.max_tokens
    )


def test_cut_keeps_a_prefix_within_budget_and_never_tokenizes_the_whole_text(fixtures) -> None:
    tokenizer = fixtures.pe_rank_model.tokenizer
    calls: list[int] = []

    class Counting:
        truncation_side = "right"

        def __call__(self, text: str, **kwargs: Any) -> Any:
            calls.append(len(text))
            return tokenizer(text, **kwargs)

    budget = TokenBudget(Counting(), 16)
    text, cut = budget.cut("naïve café 🙂 跳蚤的寿命 " * 50_000)
    assert cut and len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= 16 and text
    assert max(calls) <= 16 * MAX_CHARS_PER_TOKEN  # bounded by the budget, not by the 1M-character text
    assert budget.cut("short query") == ("short query", False)
    tail = TokenBudget(type("Left", (Counting,), {"truncation_side": "left"})(), 4)
    kept, was_cut = tail.cut("one two three four five six seven")
    assert was_cut and kept.endswith("seven") and "three" not in kept and "four" in kept


def test_a_family_that_truncates_by_itself_keeps_its_exact_rule(tiny_reranker) -> None:
    """FlagEmbedding's own query cut stays exact: the core only pre-cuts by characters and counts."""
    ranker = tiny_reranker("cross-encoder")
    budget = ranker.budgets().query
    assert budget.truncated_by_model and budget.max_tokens == ranker.query_max_length
    query = " ".join(f"word{i}" for i in range(1000))
    text, over = budget.fit(query)
    assert over and text == query  # within the character pre-cut: the model's own truncation decides
    huge, over = budget.fit(query * 100)
    assert over and len(huge) == budget.max_chars


@pytest.mark.slow
@pytest.mark.skipif(not DEFAULT_CHECKPOINT.exists(), reason="the shipped PE-Rank checkpoint is not in this checkout")
def test_default_pe_rank_peak_memory_on_a_1mb_query_and_passage_stays_near_a_normal_query() -> None:
    mb = str(1_000_000)
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "long_inputs",
            "--query-chars",
            mb,
            "--passage-chars",
            mb,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["stats"]["truncated_queries"] == 1 and got["stats"]["truncated_passages"] == 1
    assert got["long"] <= 1.5 * got["normal"], got
    assert got["long_s"] < 60, got
