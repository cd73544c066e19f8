"""Run identity: a run's file name carries its model and settings, and an old run is never reported for a
command with other settings; one's own candidates rerank without naming a dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perank.cli.evaluate import main
from perank.io import read_retrieval_results, write_retrieval_results
from perank.ranking import registry
from perank.ranking.base import BaseReranker, reorder
from perank.types import Request, Result

DATA = Path(__file__).resolve().parents[1] / "data" / "msmarco-passage"


class Reverse(BaseReranker):
    """Ranks candidates in reverse first-stage order; ``window_size``/``decode_mode`` only label the run."""

    def __init__(self, model_path: str | None = None, window_size: int = 20, decode_mode: str = "greedy") -> None:
        self.model_path, self.window_size, self.decode_mode = model_path or "models/base", window_size, decode_mode

    def describe(self) -> dict[str, object]:
        return {
            "reranker": self.name,
            "model_path": self.model_path,
            "window_size": self.window_size,
            "decode_mode": self.decode_mode,
        }

    def rerank_within_budget(self, requests: list[Request]) -> list[Result]:
        out = []
        for r in requests:
            n = len(r.candidates)
            out.append(reorder(r, list(range(n))[::-1], [float(n - i) for i in range(n)]))
        return out


@pytest.fixture(autouse=True)
def reverse_family():
    registry.register("test-reverse")(Reverse)
    try:
        yield
    finally:
        registry._REGISTRY.pop("test-reverse", None)


@pytest.fixture(scope="module")
def candidates(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cands") / "mine.top5.jsonl"
    requests = read_retrieval_results(DATA / "retrieve_results_dl19.json")[:3]
    for r in requests:
        del r.candidates[5:]
    write_retrieval_results(path, requests)
    return path


def evaluate(out: Path, candidates: Path, *extra: str) -> int:
    base = ["--datasets", "dl19", "--retrieval-results", str(candidates), "--reranker", "test-reverse"]
    return main([*base, "--output-dir", str(out), "--no-progress", "--topk", "5", *extra])


def test_two_checkpoints_give_two_runs(tmp_path: Path, candidates: Path) -> None:
    assert evaluate(tmp_path, candidates, "--model-path", "ckpts/model-a") == 0
    assert evaluate(tmp_path, candidates, "--model-path", "ckpts/model-b") == 0
    names = sorted(p.name for p in tmp_path.glob("*.txt"))
    assert names == ["eval_dl19_test-reverse-model-a_top5.txt", "eval_dl19_test-reverse-model-b_top5.txt"]


def test_settings_that_change_the_ranking_are_in_the_name(tmp_path: Path, candidates: Path) -> None:
    assert evaluate(tmp_path, candidates, "--window-size", "10", "-o", "decode_mode=single-pass") == 0
    assert evaluate(tmp_path, candidates, "--window-size", "20") == 0  # the default: not in the name
    names = sorted(p.name for p in tmp_path.glob("*.txt"))
    assert names == [
        "eval_dl19_test-reverse-base+decode_mode-single-pass+window_size-10_top5.txt",
        "eval_dl19_test-reverse-base_top5.txt",
    ]


def test_an_old_run_with_other_settings_is_never_rescored(tmp_path: Path, candidates: Path, capsys) -> None:
    common = ["--run-name", "mine"]
    assert evaluate(tmp_path, candidates, *common, "--window-size", "10") == 0
    capsys.readouterr()
    assert evaluate(tmp_path, candidates, *common, "--window-size", "12") == 2
    err = capsys.readouterr().err
    assert "was made with other settings (window_size: 10 (run) vs 12 (now))" in err and "--overwrite" in err
    assert evaluate(tmp_path, candidates, *common, "-o", "decode_mode=single-pass", "--window-size", "10") == 2
    assert "decode_mode: 'greedy' (run) vs 'single-pass' (now)" in capsys.readouterr().err
    # the same settings rescore; --overwrite reranks with the new ones and records them
    assert evaluate(tmp_path, candidates, *common, "--window-size", "10") == 0
    assert "exists with the same settings; scoring it" in capsys.readouterr().out
    assert evaluate(tmp_path, candidates, *common, "--window-size", "12", "--overwrite") == 0
    metrics = json.loads((tmp_path / "eval_dl19_mine_top5.txt.metrics.json").read_text())
    assert metrics["reranker"]["window_size"] == 12


def test_a_run_without_recorded_settings_is_not_rescored(tmp_path: Path, candidates: Path, capsys) -> None:
    assert evaluate(tmp_path, candidates, "--run-name", "x") == 0
    (tmp_path / "eval_dl19_x_top5.txt.metrics.json").unlink()
    assert evaluate(tmp_path, candidates, "--run-name", "x") == 2
    assert "records no settings" in capsys.readouterr().err


def test_own_candidates_need_no_dataset_and_no_qrels(tmp_path: Path, candidates: Path, capsys) -> None:
    code = main(["--retrieval-results", str(candidates), "--reranker", "test-reverse", "--output-dir", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert (tmp_path / "eval_mine_test-reverse-base_top100.txt").exists()
    assert "not scored" in out
    qrels = DATA / "qrels.dl19-passage.txt"
    code = main(
        ["--retrieval-results", str(candidates), "--qrels", str(qrels), "--reranker", "test-reverse"]
        + ["--output-dir", str(tmp_path / "scored"), "--run-name", "r"]
    )
    assert code == 0
    metrics = json.loads((tmp_path / "scored" / "eval_mine_r_top100.txt.metrics.json").read_text())
    assert metrics["metrics"]["ndcg_cut_10"] > 0 and metrics["candidates"] == str(candidates.resolve())


def test_output_folder_is_checked_before_any_model_loads(tmp_path: Path, candidates: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert evaluate(blocker / "sub", candidates) == 2
    assert f"--output-dir {blocker / 'sub'}: cannot create it" in capsys.readouterr().err
