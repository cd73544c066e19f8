"""``recipes/build_rank_mix.sh``: the default (dense) teacher builds what it always built; ``TEACHER=colbert`` draws
the same windows, has ColBERT score only their passages, and keeps DL19 out in every command of its phase."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.paths import REPO
from perank.tools.data import rank_windows

DL19_QRELS = "data/msmarco-passage/qrels.dl19-passage.txt"
DL19_CANDIDATES = str(REPO / "data" / "msmarco-passage" / "retrieve_results_dl19.json")

#: stands in for the recipe's python: logs each command line and writes a placeholder where it would write
STUB = """
import json, os, sys
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["-m", "perank"]:
    for flag in ("-o", "--output"):
        if flag in args:
            open(args[args.index(flag) + 1], "w").write("{}\\n")
    if args[2] == "build-small-mix":
        folder = args[args.index("--output-dir") + 1]
        for name in ("mixed.jsonl", "arguana_train.jsonl"):
            open(os.path.join(folder, name), "w").write("{}\\n")
"""


def run_recipe(
    tmp_path: Path, teacher: str | None, script: str = "build_rank_mix.sh", **extra: str
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """``recipes/SCRIPT`` run with the stub as its python, ``WORK`` in ``tmp_path``, ``TEACHER`` as given (unset:
    None) and ``extra`` environment; returns the process and the logged command lines."""
    stub = tmp_path / "stub.py"
    stub.write_text(f"#!{sys.executable}\n{STUB}", encoding="utf-8")
    stub.chmod(0o755)
    log = tmp_path / "log.jsonl"
    env = {**os.environ, "PY": str(stub), "WORK": str(tmp_path / "w"), "STUB_LOG": str(log), **extra}
    for name in ("TEACHER", "OUT", "DEST", "MAX_STEPS"):
        if name not in extra:
            env.pop(name, None)
    if teacher is not None:
        env["TEACHER"] = teacher
    done = subprocess.run(["bash", str(REPO / "recipes" / script)], env=env, capture_output=True, text=True, timeout=60)
    commands = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, commands


def value(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_the_default_teacher_is_dense_and_unchanged(tmp_path: Path) -> None:
    done, commands = run_recipe(tmp_path, None)
    assert done.returncode == 0, done.stderr
    builds = [c for c in commands if c[2:3] == ["build-rank-data"]]
    assert [value(c, "--teacher") for c in builds] == ["dense", "qrels", "dense", "dense"]
    assert not any("src/evaluate.py" in c or "--candidates-only" in c for c in commands)
    mixes = [value(c, "-o") for c in commands if c[2:3] == ["mix-train-rows"]]
    assert [Path(m).name for m in mixes] == ["train_mix.jsonl", "train_mix_e2.jsonl", "train_mix_e3.jsonl"]


def test_colbert_labels_the_dense_builds_windows_and_keeps_dl19_out(tmp_path: Path) -> None:
    done, commands = run_recipe(tmp_path, "colbert")
    assert done.returncode == 0, done.stderr
    builds = [c for c in commands if c[2:3] == ["build-rank-data"]]
    assert builds and all(value(c, "--forbid-qrels") == DL19_QRELS for c in builds)
    assert not any("retrieve_results_dl19" in arg for c in commands for arg in c)
    drawn = {value(c, "--retrieval-results"): c for c in builds if "--candidates-only" in c}
    labelled = {value(c, "--retrieval-results"): c for c in builds if "--run" in c}
    assert len(drawn) == 3 and drawn.keys() == labelled.keys()
    for candidates, draw in drawn.items():
        label = labelled[candidates]
        # the same draws as the dense build of the same candidates: same windows per query, default seed
        assert value(draw, "--windows-per-query") == value(label, "--windows-per-query")
        assert "--seed" not in draw and "--seed" not in label
    evaluations = [c for c in commands if c[:1] == ["src/evaluate.py"]]
    assert sorted(value(c, "--retrieval-results") for c in evaluations) == sorted(
        value(c, "-o") for c in drawn.values()
    )
    for evaluation in evaluations:
        assert value(evaluation, "--reranker") == "colbert"
        stem = Path(value(evaluation, "--retrieval-results")).name.split(".")[0]
        run = Path(value(evaluation, "--output-dir")) / f"eval_{stem}_{value(evaluation, '--run-name')}_top100.txt"
        assert str(run) in {value(c, "--run") for c in labelled.values()}  # the file evaluate.py writes is read
    mix = next(c for c in commands if c[2:3] == ["mix-train-rows"])
    assert Path(value(mix, "-o")).name == "train_mix_colbert.jsonl"
    assert sorted(Path(s).name for s in mix[mix.index("-o") + 2 :]) == [
        "arguana_train_colbert.jsonl:1",
        "dl20_colbert.jsonl:3",
        "dl20_qrels.jsonl:3",
        "mixed_colbert.jsonl:1",
    ]


def test_the_colbert_phase_commands_refuse_dl19_candidates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each build-rank-data command of the phase, given DL19's candidates instead of its own, is refused."""
    _, commands = run_recipe(tmp_path, "colbert")
    builds = [c[3:] for c in commands if c[2:3] == ["build-rank-data"] and "--qrels" not in c]
    assert len(builds) == 6
    for argv in builds:
        argv = [DL19_CANDIDATES if a == value(argv, "--retrieval-results") else a for a in argv]
        argv[argv.index("-o") + 1] = str(tmp_path / "out.jsonl")
        if "--run" in argv:
            argv[argv.index("--run") + 1] = str(tmp_path / "no-such-run.txt")
        argv = [str(REPO / a) if a == DL19_QRELS else a for a in argv]
        assert rank_windows.main(argv) == 2, shlex.join(argv)
        assert "refusing: 43 queries are judged in" in capsys.readouterr().err
        assert not (tmp_path / "out.jsonl").exists()


def test_an_unknown_teacher_is_refused(tmp_path: Path) -> None:
    done, commands = run_recipe(tmp_path, "bm25")
    assert done.returncode == 2 and "TEACHER=bm25: choose dense (the default) or colbert" in done.stderr
    assert commands == []


def test_the_listwise_sft_recipe_trains_on_the_teacher_it_is_given(tmp_path: Path) -> None:
    """Default: the dense mix, 60 steps into listwise_sft (what trained the shipped folder); TEACHER=colbert: the
    ColBERT mix, 600 steps, into folders of its own (the shipped folder is never its default)."""
    work = tmp_path / "w"
    dest = str(tmp_path / "dest")
    cases = [
        (None, {"DEST": dest}, "train_mix.jsonl", "listwise_sft", "60"),
        ("colbert", {}, "train_mix_colbert.jsonl", "listwise_sft_colbert", "600"),
    ]
    for teacher, extra, data, out, steps in cases:
        folder = tmp_path / (teacher or "dense")
        folder.mkdir()
        done, commands = run_recipe(folder, teacher, "listwise_sft/train_small.sh", WORK=str(work), **extra)
        assert done.returncode == 0, done.stderr
        train = next(c for c in commands if c[:1] == ["src/train.py"])
        assert value(train, "--data_path") == f"{work}/{data}" and value(train, "--output_dir") == f"{work}/{out}"
        assert value(train, "--max_steps") == steps
        assert any(c[:1] == ["src/evaluate.py"] for c in commands) == (teacher == "colbert")
    assert (work / "listwise-sft-smollm2-colbert").is_dir()  # the colbert run's default DEST, written by the copy step
