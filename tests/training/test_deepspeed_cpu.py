"""A few real DeepSpeed ZeRO-2 steps on CPU (2 processes over gloo) with a tiny random model, then reload.

What works here (deepspeed 0.19, no GPU): ``DS_ACCELERATOR=cpu deepspeed --num_gpus 2 src/train.py
--deepspeed scripts/zero2.json ... --use_cpu`` starts two ranks on localhost that train over gloo. The
saved folder is a normal perank checkpoint that :meth:`PERankModel.from_pretrained` reads.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.paths import REPO
from perank.families.pe_rank.model import PERankModel


def _deepspeed() -> str | None:
    exe = Path(sys.executable).parent / "deepspeed"
    return str(exe) if exe.exists() else shutil.which("deepspeed")


@pytest.mark.slow
def test_zero2_two_ranks_on_cpu(tmp_path: Path, tiny_models: tuple[str, str], rank_row, write_jsonl) -> None:
    exe = _deepspeed()
    if exe is None:
        pytest.skip("deepspeed launcher not installed")
    llm, enc = tiny_models
    data = write_jsonl(tmp_path / "train.jsonl", [rank_row(4, query_embedding=True, start=i) for i in range(8)])
    out = tmp_path / "out"
    cmd = [
        exe, "--num_gpus", "2", "--master_port", "29731", str(REPO / "src" / "train.py"),
        "--deepspeed", str(REPO / "scripts" / "zero2.json"),
        "--model_type", "rank_lm", "--model_name_or_path", llm, "--encoder_name", enc,
        "--data_path", str(data), "--query_embedding", "--tune_mlp_adapter",
        "--lora_enable", "--lora_r", "4", "--lora_alpha", "8",
        "--output_dir", str(out), "--max_steps", "3", "--per_device_train_batch_size", "1",
        "--learning_rate", "1e-3", "--logging_steps", "1", "--save_strategy", "steps", "--save_steps", "3",
        "--report_to", "none", "--use_cpu", "--bf16", "--model_max_length", "1024",
    ]  # fmt: skip
    env = dict(os.environ, DS_ACCELERATOR="cpu", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "world size 2" in log, log[-3000:]
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert (out / "checkpoint-3").is_dir()
    model = PERankModel.from_pretrained(out)
    assert model.config.query_embedding
    assert json.loads((out / "perank_config.json").read_text())["llm_weights"] == "lora"
