"""Windows given back unchanged: counted once by the sliding-window core for every window family (a model that
copies its input order shows up there), summed in the run's accounting, printed by the pipeline and shown by
``perank compare``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perank.accounting import WindowCounts, summarize_stats, window_counts
from perank.backends.lm import Capability, Generated, LanguageModel, Sampling
from perank.compare.cost import cost_of
from perank.compare.report import fmt_calls
from perank.families.dear.reranker import DearReranker
from perank.families.listwise_text.reranker import ListwiseTextReranker
from perank.io import write_retrieval_results
from perank.metrics import metrics_path
from perank.pipeline import run_pipeline
from perank.ranking.sliding_window import QueryState, WindowReranker
from perank.types import Candidate, Query, Request

ANSWERS: dict[str, Callable[[int], str]] = {
    "identity": lambda n: " > ".join(f"[{i}]" for i in range(1, n + 1)),
    "reversed": lambda n: " > ".join(f"[{i}]" for i in range(n, 0, -1)),
    "prose": lambda n: "These passages all look relevant to me.",
}


def request(qid: str, n: int) -> Request:
    cands = [
        Candidate(docid=f"{qid}-{i}", text=f"passage {i} about topic {qid}", score=0.0, rank=i + 1) for i in range(n)
    ]
    return Request(query=Query(qid=qid, text=f"query {qid}"), candidates=cands)


class ScriptedLM(LanguageModel):
    """A generating 'model' whose answer to each window prompt is ``answer(n)`` for its n passages (read from the
    prompt's "I will provide you with n passages", which both the RankGPT and the DeAR prompts say)."""

    def __init__(self, tokenizer: Any, answer: Callable[[int], str]) -> None:
        super().__init__(tokenizer, name="scripted", capabilities=frozenset({Capability.GENERATE}))
        self.answer = answer

    def runtime(self) -> dict[str, Any]:
        return {"dtype": "float32"}

    def generate(
        self, prompts: list[str], max_new_tokens: int, *, sampling: Sampling | None = None, add_special_tokens=False
    ) -> Generated:
        texts = [self.answer(int(re.search(r"provide you with (\d+) passages", p).group(1))) for p in prompts]
        return Generated(texts, [len(p.split()) for p in prompts], [len(t.split()) for t in texts], 0.0)


class FixedWindows(WindowReranker):
    """A window family with no model at all: each window kept as it came, or reversed."""

    name = "test-fixed-windows"

    def __init__(self, rule: str) -> None:
        self.configure_windows(8, 4, 2)
        self.rule = rule

    def describe(self) -> dict[str, Any]:
        return {"reranker": self.name, "run_label": f"{self.name}-{self.rule}"}

    def rank_windows(self, k: int, states: list[QueryState], scratch: dict[str, Any]) -> None:
        for s in states:
            order = list(range(len(s.window(k))))
            s.place(k, order if self.rule == "identity" else order[::-1])


def text_ranker(family: str, tokenizer: Any, answer: str) -> WindowReranker:
    lm = ScriptedLM(tokenizer, ANSWERS[answer])
    if family == "dear":
        return DearReranker(lm=lm, prompt="repo", window_size=4, step=2)
    return ListwiseTextReranker(lm=lm, window_size=4, step=2)


@pytest.mark.parametrize("family", ["listwise-text", "dear"])
@pytest.mark.parametrize(("answer", "unchanged", "unparsed"), [("identity", 2, 0), ("reversed", 0, 0), ("prose", 2, 2)])
def test_text_families_count_windows_given_back_unchanged(family, answer, unchanged, unparsed, tiny_model) -> None:
    """6 passages in windows of 4, step 2: two windows. The identity answer leaves both unchanged, the reversed one
    neither, and prose (no identifier) leaves both unchanged and unparsed."""
    (result,) = text_ranker(family, tiny_model.tokenizer, answer).rerank([request("q", 6)])
    stats = result.stats
    assert (stats["windows"], stats["windows_unchanged"], stats["parse_fallbacks"]) == (2, unchanged, unparsed)
    moved = [c.docid for c in result.candidates] != [f"q-{i}" for i in range(6)]
    assert moved == (answer == "reversed")


@pytest.mark.parametrize(("rule", "unchanged"), [("identity", 2), ("reversed", 0)])
def test_the_core_counts_for_any_window_family(rule: str, unchanged: int) -> None:
    """The count is the core's (QueryState.place), so a family without text, e.g. PE-Rank's decoding, has it too."""
    results = FixedWindows(rule).rerank([request("a", 6), request("b", 1), request("c", 3)])
    assert [(r.stats["windows"], r.stats["windows_unchanged"]) for r in results] == [
        (2, unchanged),
        (0, 0),
        (1, unchanged // 2),
    ]
    counts = window_counts(summarize_stats(results)["per_query"])
    assert counts == WindowCounts(windows=3, unchanged=unchanged + unchanged // 2, unparsed=None)


def test_the_run_records_and_prints_the_windows_unchanged(tmp_path: Path, tiny_model, capsys) -> None:
    cands = tmp_path / "cands.jsonl"
    write_retrieval_results(cands, [request(q, 6) for q in ("1", "2", "3")])
    for answer, line in [
        ("identity", "windows unchanged: 6 of 6 (100%)"),
        ("reversed", "windows unchanged: 0 of 6 (0%)"),
    ]:
        ranker = text_ranker("dear", tiny_model.tokenizer, answer)
        out = tmp_path / answer
        run_path, _ = run_pipeline(None, ranker, retrieval_results=cands, topk=6, output_dir=out, show_progress=False)
        assert line in capsys.readouterr().out.splitlines()
        accounting = json.loads(metrics_path(run_path).read_text())["accounting"]
        assert accounting["totals"]["windows"] == 6
        assert accounting["totals"]["windows_unchanged"] == (6 if answer == "identity" else 0)
        assert {s["windows_unchanged"] for s in accounting["per_query"].values()} == {2 if answer == "identity" else 0}
        assert accounting["totals"]["parse_fallbacks"] == 0


def test_unparsed_answers_are_named_in_the_note() -> None:
    assert (
        WindowCounts(windows=9, unchanged=7, unparsed=2).note() == "windows unchanged: 7 of 9 (78%), 2 of them unparsed"
    )
    assert WindowCounts(windows=9, unchanged=9, unparsed=0).note() == "windows unchanged: 9 of 9 (100%)"


def test_counts_come_only_from_queries_that_record_them() -> None:
    """A query without the count (a pointwise family, a run from before it existed) adds nothing, its windows
    included; no query with it: no count at all."""
    per_query = {
        "1": {"windows": 9, "windows_unchanged": 9, "parse_fallbacks": 1},
        "2": {"windows": 9, "windows_unchanged": 0, "parse_fallbacks": 0},
        "3": {"windows": 9},
    }
    assert window_counts(per_query) == WindowCounts(windows=18, unchanged=9, unparsed=1)
    assert window_counts({"1": {"windows": 9, "windows_unchanged": 3}}) == WindowCounts(9, 3, None)
    assert window_counts({"1": {"latency_s": 1.0}}) is None


def test_compare_shows_the_share_unchanged_over_the_compared_queries() -> None:
    accounting = {
        "per_query": {
            "1": {"latency_s": 1.0, "windows": 9, "windows_unchanged": 9},
            "2": {"latency_s": 1.0, "windows": 9, "windows_unchanged": 0},
        }
    }
    assert cost_of(accounting, {"1", "2"}).windows_unchanged == 0.5
    only_first = cost_of(accounting, {"1"})
    assert only_first.windows_unchanged == 1.0 and fmt_calls(only_first) == "9.0 (100% unchanged)"
    pointwise = cost_of({"per_query": {"1": {"latency_s": 1.0, "llm_calls": 100}}}, {"1"})
    assert pointwise.windows_unchanged is None and fmt_calls(pointwise) == "100.0"
