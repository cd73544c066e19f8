"""The metrics must reproduce the published BM25 numbers from the shipped runs exactly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.paths import REPO
from perank.io import read_qrels, read_trec_run
from perank.metrics import evaluate_run, format_metrics, measure_names, metrics_path, score_run_file

MS = REPO / "data" / "msmarco-passage"
CASES = [
    ("dl19", MS / "trec_results_dl19.txt", MS / "qrels.dl19-passage.txt", 0.5058),
    ("dl20", MS / "trec_results_dl20.txt", MS / "qrels.dl20-passage.txt", 0.4796),
]


@pytest.mark.parametrize(("name", "run", "qrels", "ndcg10"), CASES)
def test_shipped_bm25_runs(name: str, run: Path, qrels: Path, ndcg10: float) -> None:
    metrics = evaluate_run(read_trec_run(run), read_qrels(qrels))
    assert round(metrics["ndcg_cut_10"], 4) == ndcg10
    assert list(metrics) == measure_names()
    assert len(metrics) == 15


def test_averaging_ignores_missing_judged_queries_unless_complete() -> None:
    qrels = {"1": {"a": 1}, "2": {"b": 1}}
    run = {"1": {"a": 2.0, "x": 1.0}, "3": {"b": 1.0}}  # query 2 missing, query 3 unjudged
    assert evaluate_run(run, qrels)["ndcg_cut_10"] == pytest.approx(1.0)
    assert evaluate_run(run, qrels, complete=True)["ndcg_cut_10"] == pytest.approx(0.5)


def test_format_metrics_is_stable_and_tab_separated() -> None:
    text = format_metrics({"recall_5": 0.123456, "ndcg_cut_10": 0.50583, "ndcg_cut_1": 1.0})
    assert text.splitlines() == ["ndcg_cut_1\t1.0000", "ndcg_cut_10\t0.5058", "recall_5\t0.1235"]


def test_score_run_file_writes_json_beside_run_and_keeps_other_keys(tmp_path: Path) -> None:
    run = tmp_path / "run.txt"
    shutil.copy(CASES[0][1], run)
    out = metrics_path(run)
    out.write_text(json.dumps({"accounting": {"x": 1}}))
    metrics = score_run_file(run, CASES[0][2])
    data = json.loads(out.read_text())
    assert out.name == "run.txt.metrics.json"
    assert data["metrics"] == metrics and data["num_queries"] == 43
    assert data["accounting"] == {"x": 1}


def test_trec_eval_cli_prints_measure_lines(tmp_path: Path) -> None:
    run = tmp_path / "bm25.txt"
    shutil.copy(CASES[0][1], run)
    proc = subprocess.run(
        [sys.executable, str(REPO / "src" / "scripts" / "trec_eval.py"), "--dataset", "dl19", "--ranking", str(run)],
        cwd=tmp_path,  # runs from any directory
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ndcg_cut_10\t0.5058" in proc.stdout.splitlines()
    assert len(proc.stdout.splitlines()) == 15
    assert json.loads(metrics_path(run).read_text())["metrics"]["ndcg_cut_10"] == pytest.approx(0.5058, abs=5e-5)
