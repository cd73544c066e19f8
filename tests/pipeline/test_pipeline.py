"""The pipeline end to end: reproduces BM25 with the identity reranker, and survives interruptions."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from helpers.paths import REPO
from perank.cli.evaluate import PASS_THROUGH, main
from perank.io import read_retrieval_results, write_retrieval_results
from perank.metrics import metrics_path
from perank.pipeline import run_pipeline
from perank.ranking.base import BaseReranker, reorder
from perank.ranking.family import Family, RerankerEntry
from perank.ranking.registry import available_rerankers, build_with_shared_options
from perank.runs import partial_path
from perank.types import InputError, Request, Result

DL19_JSON = REPO / "data" / "msmarco-passage" / "retrieve_results_dl19.json"


class SimulatedCrashError(RuntimeError):
    """Stands in for a crash (kill, out of memory) in the middle of a run."""


class ToyReranker(BaseReranker):
    """Deterministic non-trivial order (by docid), with stats; optionally crashes after some batches."""

    name = "toy"
    #: the simulated crash changes no ranking: a crashed run and its resumption are one run
    volatile_settings = BaseReranker.volatile_settings | {"fail_after"}

    def __init__(self, fail_after: int | None = None) -> None:
        self.fail_after = fail_after
        self.batches = 0
        self.seen: list[str] = []

    def describe(self) -> dict[str, Any]:
        return {"reranker": "toy", "run_label": "toy"}

    def rerank_within_budget(self, requests: list[Request]) -> list[Result]:
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise SimulatedCrashError("simulated crash")
        self.batches += 1
        out = []
        for r in requests:
            self.seen.append(r.query.qid)
            order = sorted(range(len(r.candidates)), key=lambda i: r.candidates[i].docid)
            scores = [float(len(order) - k) for k in range(len(order))]
            out.append(reorder(r, order, scores, {"tokens_processed": 10, "parse_repairs": 1, "latency_s": 0.5}))
        return out


@pytest.fixture(scope="module")
def small_candidates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 10 DL19 queries, top 20, as retrieval-results JSONL."""
    requests = read_retrieval_results(DL19_JSON)[:10]
    for r in requests:
        del r.candidates[20:]
    path = tmp_path_factory.mktemp("cands") / "dl19_small.jsonl"
    write_retrieval_results(path, requests)
    return path


def _run(out: Path, reranker: BaseReranker, cands: Path) -> tuple[Path, dict[str, float]]:
    return run_pipeline(
        "dl19", reranker, retrieval_results=cands, topk=20, output_dir=out, batch_size=3, show_progress=False
    )


def test_identity_reproduces_bm25(tmp_path: Path) -> None:
    run_path, metrics = run_pipeline(
        "dl19", "identity", retrieval_results=DL19_JSON, output_dir=tmp_path, show_progress=False
    )
    assert run_path == tmp_path / "eval_dl19_identity_top100.txt"
    assert round(metrics["ndcg_cut_10"], 4) == 0.5058
    data = json.loads(metrics_path(run_path).read_text())
    assert data["metrics"]["ndcg_cut_10"] == metrics["ndcg_cut_10"]
    assert data["accounting"]["num_queries"] == 43
    assert not partial_path(run_path).exists()


def test_accounting_sums_reranker_stats(tmp_path: Path, small_candidates: Path) -> None:
    run_path, _ = _run(tmp_path, ToyReranker(), small_candidates)
    acc = json.loads(metrics_path(run_path).read_text())["accounting"]
    assert acc["totals"]["parse_repairs"] == 10
    assert acc["totals"]["tokens_processed"] == 100
    assert acc["totals"]["tokens_generated"] == 0
    assert acc["medians"]["latency_s"] == pytest.approx(0.5)
    assert len(acc["per_query"]) == 10


def test_resume_after_crash_gives_identical_run(tmp_path: Path, small_candidates: Path) -> None:
    clean_path, clean_metrics = _run(tmp_path / "clean", ToyReranker(), small_candidates)

    out = tmp_path / "resumed"
    with pytest.raises(SimulatedCrashError):
        _run(out, ToyReranker(fail_after=2), small_candidates)
    progress = partial_path(out / clean_path.name)
    assert not (out / clean_path.name).exists()
    lines = progress.read_text().splitlines()
    assert len(lines) == 1 + 6  # header + two batches of three

    second = ToyReranker()
    run_path, metrics = _run(out, second, small_candidates)
    assert len(second.seen) == 4 and len(set(second.seen)) == 4  # only the unfinished queries
    assert run_path.read_bytes() == clean_path.read_bytes()
    assert metrics == clean_metrics
    assert not progress.exists()
    assert json.loads(metrics_path(run_path).read_text())["accounting"]["num_queries"] == 10


def test_resume_ignores_truncated_last_line(
    tmp_path: Path, small_candidates: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clean_path, _ = _run(tmp_path / "clean", ToyReranker(), small_candidates)
    out = tmp_path / "resumed"
    with pytest.raises(SimulatedCrashError):
        _run(out, ToyReranker(fail_after=2), small_candidates)
    progress = partial_path(out / clean_path.name)
    raw = progress.read_bytes()
    progress.write_bytes(raw[:-25])  # a crash in the middle of writing the sixth query

    second = ToyReranker()
    with caplog.at_level(logging.WARNING):
        run_path, _ = _run(out, second, small_candidates)
    assert "truncated last line" in caplog.text
    assert len(second.seen) == 5  # the cut query is redone, nothing is duplicated
    assert run_path.read_bytes() == clean_path.read_bytes()


def test_finished_run_is_rescored_not_recomputed(tmp_path: Path, small_candidates: Path) -> None:
    _run(tmp_path, ToyReranker(), small_candidates)
    again = ToyReranker()
    _run(tmp_path, again, small_candidates)
    assert again.seen == []
    forced = ToyReranker()
    run_pipeline(
        "dl19",
        forced,
        retrieval_results=small_candidates,
        topk=20,
        output_dir=tmp_path,
        overwrite=True,
        show_progress=False,
    )
    assert len(forced.seen) == 10


def test_evaluate_cli_identity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--datasets", "dl19", "--reranker", "identity", "--retrieval-results", str(DL19_JSON)]
    assert main([*argv, "--output-dir", str(tmp_path), "--no-progress", "--window-size", "20", "--step", "10"]) == 0
    assert "ndcg_cut_10\t0.5058" in capsys.readouterr().out.splitlines()


def test_evaluate_without_reranker_runs_pe_rank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``--reranker``: the command builds PE-Rank (the paper's model), with the options given, through the
    registry's one build (which checks them)."""
    from perank.ranking import registry

    built: list[tuple[str, dict[str, Any], tuple[str, ...]]] = []

    def record(name: str, options: dict[str, Any], shared: tuple[str, ...] = ()) -> tuple[BaseReranker, list[str]]:
        built.append((name, dict(options), tuple(shared)))
        raise SimulatedCrashError("stop before any model loads")

    monkeypatch.setattr(registry, "build_with_shared_options", record)
    argv = ["--retrieval-results", str(DL19_JSON), "--output-dir", str(tmp_path), "--window-size", "8"]
    with pytest.raises(SimulatedCrashError):
        main(argv)
    assert built == [("pe-rank", {"window_size": 8}, PASS_THROUGH)]
    assert "pe-rank" in available_rerankers()


def test_shared_options_are_dropped_for_families_without_them(install_family) -> None:
    class Strict(BaseReranker):
        name = "test-strict"

        def __init__(self, model_path: str | None = None) -> None:
            self.model_path = model_path

        def rerank_within_budget(self, requests: list[Request]) -> list[Result]:
            return []

    install_family(Family("test-strict", rerankers=(RerankerEntry("test-strict", Strict),)))
    strict, dropped = build_with_shared_options("test-strict", {"model_path": "m", "window_size": 20}, PASS_THROUGH)
    assert dict(strict.options) == {"model_path": "m"} and dropped == ["window_size"]
    identity, dropped = build_with_shared_options("identity", {"window_size": 20, "max_query_length": 8}, PASS_THROUGH)
    assert dict(identity.options) == {} and dropped == ["max_query_length", "window_size"]
    # what is not a shared option is checked, shared or not; so is the value of a shared one that is then dropped
    with pytest.raises(InputError, match="has no option 'batch_sise' \\(did you mean"):
        build_with_shared_options("dense", {"batch_sise": 4}, PASS_THROUGH)
    with pytest.raises(InputError, match="max_query_length must be a positive integer \\(tokens\\), got 0"):
        build_with_shared_options("identity", {"max_query_length": 0}, PASS_THROUGH)
