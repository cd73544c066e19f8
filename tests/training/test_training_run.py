"""End-to-end plain (non-DeepSpeed) training on a tiny random model: stage 1, stage 2 with LoRA, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from perank.cli.train import main
from perank.families.pe_rank.model import PERankModel

COMMON = ["--per_device_train_batch_size", "2", "--logging_steps", "1", "--report_to", "none", "--use_cpu"]


def _common(llm: str, enc: str, out: Path, data: Path) -> list[str]:
    return ["--model_name_or_path", llm, "--encoder_name", enc, "--data_path", str(data), "--output_dir", str(out)]


def test_stage1_then_stage2_with_resume(
    tmp_path: Path, tiny_models: tuple[str, str], align_row, rank_row, write_jsonl
) -> None:
    llm, enc = tiny_models
    s1 = tmp_path / "s1"
    align = write_jsonl(tmp_path / "align.jsonl", [align_row(i) for i in range(4)])
    # original GPU flags are downgraded on CPU, not fatal
    args = _common(llm, enc, s1, align) + ["--model_type", "causal_lm", "--freeze_backbone", "--tune_mlp_adapter"]
    args += ["--max_steps", "2", "--learning_rate", "1e-3", "--bf16", "--tf32", "True"]
    args += ["--attn_implementation", "flash_attention_2", "--evaluation_strategy", "no", "--save_strategy", "no"]
    assert main(args + COMMON) == 0
    assert (s1 / "projector.bin").exists()
    cfg = json.loads((s1 / "perank_config.json").read_text())
    assert cfg["llm_weights"] == "base"
    proj_bin = torch.load(s1 / "projector.bin", weights_only=True)
    assert set(proj_bin) == {
        "model.projector.0.weight",
        "model.projector.0.bias",
        "model.projector.2.weight",
        "model.projector.2.bias",
    }

    s2 = tmp_path / "s2"
    rows = [rank_row(4, query_embedding=True, start=i) for i in range(4)]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    args = _common(llm, enc, s2, data) + ["--model_type", "rank_lm", "--query_embedding", "--tune_mlp_adapter"]
    args += ["--pretrain_mlp_adapter", str(s1 / "projector.bin"), "--lora_enable", "--lora_r", "4"]
    args += ["--lora_alpha", "8", "--use_embedding_with_content", "True", "--kl_loss_weight", "0.2"]
    args += ["--listmle_weighting", "top", "--save_strategy", "steps", "--save_steps", "1", "--learning_rate", "1e-3"]
    args += ["--gradient_checkpointing", "--model_max_length", "1024"]
    assert main(args + ["--max_steps", "2"] + COMMON) == 0
    assert (s2 / "checkpoint-2" / "model.safetensors").exists()
    # the resumed run continues from step 2 (found automatically in output_dir); the projector setting of the
    # checkpoint (query_embedding) wins even if the command line forgets it; --family may sit anywhere
    resumed = [a for a in args if a != "--query_embedding"] + ["--family", "pe-rank", "--max_steps", "3"]
    assert main(resumed + COMMON) == 0
    state = json.loads((s2 / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    model = PERankModel.from_pretrained(s2)
    assert model.config.query_embedding
    assert json.loads((s2 / "perank_config.json").read_text())["llm_weights"] == "lora"
    assert (s2 / "adapter_model.safetensors").exists() and not (s2 / "model.safetensors").exists()


def test_bad_data_exits_with_error(tmp_path: Path, tiny_models: tuple[str, str], capsys, rank_row, write_jsonl) -> None:
    llm, enc = tiny_models
    row = rank_row(4)
    row["ranking"] = [0, 1, 2, 2]
    data = write_jsonl(tmp_path / "train.jsonl", [row])
    args = _common(llm, enc, tmp_path / "o", data) + ["--model_type", "rank_lm", "--tune_mlp_adapter"]
    assert main(args + ["--max_steps", "1"] + COMMON) == 2
    assert f"{data}:1: 'ranking' is not a permutation" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--model_type", "bogus"], ["--listmle_weighting", "bogus"]])
def test_bad_flags(tmp_path: Path, tiny_models: tuple[str, str], flag: list[str], rank_row, write_jsonl) -> None:
    llm, enc = tiny_models
    data = write_jsonl(tmp_path / "train.jsonl", [rank_row(4)])
    args = _common(llm, enc, tmp_path / "o", data) + ["--model_type", "rank_lm", "--tune_mlp_adapter"] + flag
    assert main(args + COMMON) == 2
