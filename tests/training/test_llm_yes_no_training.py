"""``--family llm-yes-no``: LoRA fine-tuning on the 'Yes' logit, on the tiny Gemma fixture, and the result loaded
by the ``llm-yes-no`` reranker."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from helpers.paths import PEERS
from perank.cli.train import main as train_main
from perank.families.llm_yes_no.reranker import LLMYesNoReranker
from perank.families.llm_yes_no.training import group_loss

TINY = PEERS / "bge-gemma-tiny"
QUERY, POSITIVE = "how long do fleas live", "fleas live up to a year"

COMMON = ["--family", "llm-yes-no", "--use_cpu", "--report_to", "none", "--logging_steps", "1"]
COMMON += ["--per_device_train_batch_size", "2", "--group_size", "3", "--query_max_len", "16"]
COMMON += ["--passage_max_len", "24", "--dataloader_num_workers", "0", "--seed", "0"]


def write_groups(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_group_loss() -> None:
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    expected = (-(3 - math.log(math.exp(3) + 2)) + math.log(3)) / 2
    assert group_loss(logits).item() == pytest.approx(expected, rel=1e-6)


def test_lora_training_lowers_the_loss_and_saves_a_loadable_adapter(tmp_path: Path) -> None:
    # the same group twice: every step sees the same batch (1 positive + both negatives), so the loss must fall
    row = {"query": QUERY, "pos": [POSITIVE], "neg": ["concrete floors cost money", "paris is in france"]}
    data = write_groups(tmp_path / "train.jsonl", [row, row])
    out = tmp_path / "out"
    args = ["--model_name_or_path", str(TINY), "--data_path", str(data), "--output_dir", str(out)]
    args += ["--max_steps", "4", "--learning_rate", "5e-3", "--lr_scheduler_type", "constant"]
    assert train_main(COMMON + args) == 0

    losses = [e["loss"] for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0] and losses == sorted(losses, reverse=True), losses

    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 32 and config["lora_alpha"] == 64
    assert sorted(config["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    trained = LLMYesNoReranker(model_path=str(out), device="cpu")
    base = LLMYesNoReranker(model_path=str(TINY), device="cpu")
    pairs = [(QUERY, POSITIVE), (QUERY, "paris is in france")]
    after, before = trained.compute_score(pairs), base.compute_score(pairs)
    assert after[0] - after[1] > before[0] - before[1]  # the positive gained on the negative
    result = trained.rank(QUERY, ["paris is in france", POSITIVE])
    assert result.candidates[0].text == POSITIVE


def test_full_training_saves_a_plain_model(tmp_path: Path) -> None:
    # with teacher scores and the shared distillation flags (the KL to the teacher's sharpened list)
    row = {"query": QUERY, "pos": [POSITIVE], "neg": ["cats", "dogs"], "pos_scores": [0.6], "neg_scores": [0.2, 0.3]}
    data = write_groups(tmp_path / "train.jsonl", [row, row])
    out = tmp_path / "full"
    args = ["--model_name_or_path", str(TINY), "--data_path", str(data), "--output_dir", str(out)]
    args += ["--max_steps", "1", "--lora_enable", "False", "--distill_weight", "1", "--teacher_temperature", "0.05"]
    assert train_main(COMMON + args) == 0
    assert (out / "config.json").exists() and not (out / "adapter_config.json").exists()
    assert len(LLMYesNoReranker(model_path=str(out), device="cpu").compute_score([(QUERY, POSITIVE)])) == 1


def test_training_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--model_name_or_path", str(TINY), "--output_dir", str(tmp_path / "out"), "--max_steps", "1"]
    assert train_main(COMMON + base) == 2
    assert "--data_path is required" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "pos": []}\n', encoding="utf-8")
    assert train_main(COMMON + base + ["--data_path", str(bad)]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err
    data = write_groups(tmp_path / "ok.jsonl", [{"query": "q", "pos": ["p"], "neg": ["n"]}])
    assert train_main(COMMON + base + ["--data_path", str(data), "--group_size", "1"]) == 2
    assert "--group_size 1" in capsys.readouterr().err
    assert train_main(COMMON + base + ["--data_path", str(data), "--distill_weight", "1"]) == 2
    assert "has no teacher scores" in capsys.readouterr().err
    assert train_main(COMMON + base + ["--data_path", str(data), "--distill_weight", "-1"]) == 2
    assert "--distill_weight -1.0: must be at least 0" in capsys.readouterr().err
