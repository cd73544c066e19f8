"""Interrupt safety end to end: SIGKILL a command at random points, rerun it, and get what an uninterrupted run
gives, byte for byte (reranking, retrieval) or step for step (training: the loss log continues, no step twice).

Each command runs in its own process group and is killed with SIGKILL (no cleanup handler runs), at a time
drawn uniformly over an uninterrupted run's duration, for several seeds.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.paths import REPO

DATA = REPO / "data" / "msmarco-passage"
SEEDS = (1, 2, 3)


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def run(cmd: list[str], cwd: Path) -> float:
    """Run to completion; returns the wall time."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return time.perf_counter() - start


def kill_after(cmd: list[str], cwd: Path, seconds: float) -> None:
    """Start ``cmd`` and SIGKILL its whole process group after ``seconds`` (if it is still running)."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def candidates(tmp_path_factory) -> Path:
    """12 DL19 queries with 10 candidates each."""
    from perank.io import read_retrieval_results, write_retrieval_results

    requests = read_retrieval_results(DATA / "retrieve_results_dl19.json")[:12]
    for r in requests:
        del r.candidates[10:]
    path = tmp_path_factory.mktemp("cands") / "dl19_12q.jsonl"
    write_retrieval_results(path, requests)
    return path


@pytest.mark.slow
def test_evaluate_killed_anywhere_resumes_to_the_same_run(tmp_path: Path, candidates: Path) -> None:
    def cmd(out: Path) -> list[str]:
        return (
            [sys.executable, str(REPO / "src" / "evaluate.py"), "--retrieval-results", str(candidates)]
            + ["--qrels", str(DATA / "qrels.dl19-passage.txt"), "--reranker", "dense", "--batch-size", "1"]
            + ["--output-dir", str(out), "--run-name", "r", "--no-progress"]
        )

    reference = tmp_path / "reference"
    duration = run(cmd(reference), tmp_path)
    expected = (reference / "eval_dl19_12q_r_top100.txt").read_bytes()
    for seed in SEEDS:
        out = tmp_path / f"killed-{seed}"
        kill_after(cmd(out), tmp_path, random.Random(seed).uniform(0.2, duration))
        run(cmd(out), tmp_path)
        assert (out / "eval_dl19_12q_r_top100.txt").read_bytes() == expected, f"seed {seed}"
        assert not list(out.glob("*.partial.jsonl")) and not list(out.glob(".*tmp*"))


@pytest.mark.slow
def test_retrieval_killed_anywhere_reruns_to_the_same_files(tmp_path: Path) -> None:
    def cmd(out: Path) -> list[str]:
        script = str(REPO / "src" / "scripts" / "run_evaluation.py")
        return [sys.executable, script, "--dataset", "dl19", "--topk", "20", "--output", str(out / "dl19.jsonl")]

    reference = tmp_path / "reference"
    duration = run(cmd(reference), tmp_path)
    expected = {p.name: p.read_bytes() for p in reference.iterdir()}
    for seed in SEEDS:
        out = tmp_path / f"killed-{seed}"
        kill_after(cmd(out), tmp_path, random.Random(seed).uniform(0.2, duration))
        # a killed run never leaves a half-written file under the final names
        for path in out.glob("dl19*") if out.exists() else []:
            assert path.read_bytes() == expected[path.name], f"seed {seed}: {path.name} is partial"
        run(cmd(out), tmp_path)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == expected, f"seed {seed}"


@pytest.mark.slow
def test_training_killed_anywhere_resumes_without_redoing_a_step(
    tmp_path: Path, tiny_models: tuple[str, str], rank_row, write_jsonl
) -> None:
    llm, enc = tiny_models
    data = write_jsonl(tmp_path / "train.jsonl", [rank_row(4, start=i) for i in range(6)])
    steps = 6

    def cmd(out: Path) -> list[str]:
        return (
            [sys.executable, str(REPO / "src" / "train.py"), "--model_name_or_path", llm, "--encoder_name", enc]
            + ["--data_path", str(data), "--output_dir", str(out), "--model_type", "rank_lm", "--tune_mlp_adapter"]
            + ["--lora_enable", "--lora_r", "4", "--max_steps", str(steps), "--save_strategy", "steps"]
            + ["--save_steps", "1", "--logging_steps", "1", "--learning_rate", "1e-3", "--seed", "7"]
            + ["--per_device_train_batch_size", "1", "--report_to", "none", "--use_cpu", "--save_total_limit", "2"]
        )

    def losses(out: Path) -> dict[int, float]:
        history = json.loads((out / "trainer_state.json").read_text())["log_history"]
        logged = [(h["step"], h["loss"]) for h in history if "loss" in h]
        assert len(logged) == len({s for s, _ in logged}), f"a step was logged twice: {logged}"
        return dict(logged)

    reference = tmp_path / "reference"
    duration = run(cmd(reference), tmp_path)
    expected = losses(reference)
    assert sorted(expected) == list(range(1, steps + 1))
    for seed in SEEDS[:2]:
        out = tmp_path / f"killed-{seed}"
        kill_after(cmd(out), tmp_path, random.Random(seed).uniform(0.3, 1.0) * duration)
        run(cmd(out), tmp_path)
        got = losses(out)
        assert sorted(got) == list(range(1, steps + 1)), f"seed {seed}: steps {sorted(got)}"
        assert got == pytest.approx(expected, abs=1e-4), f"seed {seed}: the resumed loss log differs"
