"""Run identity: a run's file name carries its model and settings, and an old run is never reported for a
command with other settings; a reranker built directly, through the API or by the command line with the same
options is one run; one's own candidates rerank without naming a dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers.paths import REPO
from perank import Reranker
from perank.cli.evaluate import main
from perank.families.dense.reranker import DenseReranker
from perank.io import read_retrieval_results, write_retrieval_results
from perank.ranking.base import BaseReranker, reorder
from perank.ranking.family import Family, RerankerEntry
from perank.runs import RunIdentity, run_file_name
from perank.types import Request, Result

DATA = REPO / "data" / "msmarco-passage"


class Reverse(BaseReranker):
    """Ranks candidates in reverse first-stage order; ``window_size``/``decode_mode`` only label the run."""

    name = "test-reverse"

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
def reverse_family(install_family) -> None:
    install_family(Family("test-reverse", rerankers=(RerankerEntry("test-reverse", Reverse),)))


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


# ------------------------------------------------------------------------------------------------ one identity


def test_direct_api_and_command_line_builds_are_one_run(tmp_path: Path, candidates: Path, tiny_dirs) -> None:
    """``DenseReranker(...)``, ``Reranker("dense", ...)`` and ``evaluate.py --reranker dense ...`` with the same
    options: the same options recorded, the same identity, the same label, and the command line's run file and
    metrics JSON are the ones the directly built reranker's identity names."""
    options = {"model_path": str(tiny_dirs.encoder), "device": "cpu", "max_length": 32, "max_query_length": 16}
    direct = DenseReranker(**options)
    api = Reranker("dense", **options).family
    assert dict(direct.options) == dict(api.options) == options
    identity = RunIdentity.of(direct)
    assert identity.label == "dense-encoder+max_length-32+max_query_length-16"
    assert RunIdentity.of(api) == identity and RunIdentity.of(api).label == identity.label
    assert RunIdentity.of(api).settings == identity.settings and identity.settings["max_query_length"] == 16

    flags = ["--model-path", options["model_path"], "--device", "cpu", "--max-length", "32", "--max-query-length", "16"]
    base = ["--datasets", "dl19", "--retrieval-results", str(candidates), "--reranker", "dense", *flags]
    assert main([*base, "--output-dir", str(tmp_path), "--no-progress", "--topk", "5"]) == 0
    run = tmp_path / run_file_name("dl19", identity.label, 5)
    assert [p.name for p in tmp_path.glob("*.txt")] == [run.name]
    recorded = json.loads(Path(f"{run}.metrics.json").read_text())
    assert recorded["reranker"] == identity.settings
    assert identity.on(dataset="dl19", retriever="bm25", candidates=str(candidates.resolve()), topk=5).recorded(
        recorded
    ) == identity.on(dataset="dl19", retriever="bm25", candidates=str(candidates.resolve()), topk=5)


class Base(BaseReranker):
    def __init__(self, a: int = 1, b: str = "x", **extra: Any) -> None:
        self.a, self.b, self.extra = a, b, extra

    def rerank_within_budget(self, requests: list[Request]) -> list[Result]:
        return []


class Child(Base):
    def __init__(self, c: int = 3) -> None:
        super().__init__(a=5, b="inner")


class Mixin:
    def __init__(self, m: int = 0) -> None:
        self.m = m


class Mixed(Mixin, Base):
    """Its constructor is the mixin's, which is no reranker's: recorded all the same."""


def test_a_reranker_records_what_its_outermost_constructor_was_given() -> None:
    assert dict(Base(7, extra_flag=True).options) == {"a": 7, "extra_flag": True}  # positional by name, defaults out
    assert dict(Child(c=4).options) == {"c": 4} and dict(Child().options) == {}  # not what it passes to super()
    assert dict(Mixed(m=2).options) == {"m": 2} and Mixed(m=2).m == 2
    short = Child(max_query_length=8)  # every constructor takes the query budget
    assert short.query_length_override == 8 and dict(short.options) == {"max_query_length": 8}
    with pytest.raises(TypeError):
        short.options["c"] = 1  # type: ignore[index]
    with pytest.raises(TypeError, match="unexpected keyword argument 'd'"):
        Child(d=1)  # type: ignore[call-arg]


def test_identities_differ_by_what_changes_the_ranking_only() -> None:
    def on(reranker: BaseReranker, topk: int = 5) -> RunIdentity:
        return RunIdentity.of(reranker).on(dataset="dl19", retriever="bm25", candidates="bm25", topk=topk)

    ten = on(Reverse(window_size=10))
    assert ten == on(Reverse(window_size=10)) and ten.differences(on(Reverse(window_size=10))) == []
    assert ten.differences(on(Reverse(window_size=12), topk=100), sides=("rank 0", "rank 1")) == [
        "label: 'test-reverse-base+window_size-10' (rank 0) vs 'test-reverse-base+window_size-12' (rank 1)",
        "topk: 5 (rank 0) vs 100 (rank 1)",
        "window_size: 10 (rank 0) vs 12 (rank 1)",
    ]
    shuffled = RunIdentity.of(Reverse()).on(
        dataset="dl19", retriever="bm25", candidates="bm25", topk=5, shuffle_input="reverse"
    )
    assert shuffled.label == "test-reverse-base+shuffle-reverse" and list(shuffled.header())[-1] == "shuffle_input"
    assert RunIdentity.of(Reverse(), run_name="my run").label == "my-run"
