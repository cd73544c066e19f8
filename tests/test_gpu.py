"""GPU checks: decoding in fp32 and bf16 on CUDA, and a bf16/tf32 training run.

CI has no GPU, so these skip there; they run on a machine with CUDA (they were run on an H100).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import build_tiny_model
from test_decoding import reference, window_batch
from training_fixtures import rank_row, tiny_models, write_jsonl  # noqa: F401

from perank.families.pe_rank.decoding import decode_listwise

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CI machines have none)"),
]


def test_cuda_fp32_decoding_equals_reference(tiny_dirs):
    model = build_tiny_model(tiny_dirs, device="cuda")
    sizes = [6, 3, 9]
    prompts, batch, pvs, cvs = window_batch(model, sizes)
    outputs = decode_listwise(model, batch["input_ids"], batch["attention_mask"], pvs, cvs)
    for prompt, pv, cv, out in zip(prompts, pvs, cvs, outputs):
        ref = reference(model, prompt, pv, cv)
        assert out.order == ref.order
        torch.testing.assert_close(torch.tensor(out.step_logits), torch.tensor(ref.step_logits), atol=1e-3, rtol=0)


def test_cuda_bf16_decoding_is_a_valid_ranking(tiny_dirs):
    model = build_tiny_model(tiny_dirs, device="cuda", dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16
    sizes = [5, 8]
    _, batch, pvs, cvs = window_batch(model, sizes)
    outputs = decode_listwise(model, batch["input_ids"], batch["attention_mask"], pvs, cvs)
    for n, out in zip(sizes, outputs):
        assert sorted(out.order) == list(range(n))
        assert all(torch.isfinite(torch.tensor(out.step_logits)))


def test_bf16_tf32_training_on_cuda(tmp_path: Path, tiny_models: tuple[str, str]) -> None:  # noqa: F811
    from perank.cli.train import main
    from perank.families.pe_rank.model import PERankModel

    llm, enc = tiny_models
    data = write_jsonl(tmp_path / "rank.jsonl", [rank_row(4, start=i) for i in range(4)])
    out = tmp_path / "s2"
    args = ["--model_type", "rank_lm", "--model_name_or_path", llm, "--encoder_name", enc]
    args += ["--data_path", str(data), "--output_dir", str(out), "--max_steps", "2", "--learning_rate", "1e-4"]
    args += ["--bf16", "True", "--tf32", "True", "--per_device_train_batch_size", "2", "--report_to", "none"]
    args += ["--use_embedding_with_content", "True", "--use_embedding_without_content", "True"]
    args += ["--kl_loss_weight", "0.2", "--tune_mlp_adapter", "--save_strategy", "no"]
    assert main(args) == 0
    model = PERankModel.from_pretrained(out, device="cuda")
    assert model.dtype == torch.bfloat16
