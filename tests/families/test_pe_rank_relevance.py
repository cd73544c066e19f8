"""PE-Rank's relevance feature: each passage vector carries ``cos(query, passage) * direction``.

Checks: a zero direction ranks exactly as the model without the feature; the vectors are the projection plus
the cosine times the direction; the direction is saved and loaded (and a checkpoint without it is refused);
``--init_from`` adds it to a trained LoRA checkpoint, whose adapter goes on training.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from perank.cli.train import main
from perank.families.pe_rank.model import RELEVANCE_NAME, PERankModel
from perank.families.pe_rank.reranker import PERankReranker


def test_zero_direction_ranks_as_without_feature(make_tiny_model, topic_request):
    plain = make_tiny_model(seed=3, query_embedding=True)
    featured = make_tiny_model(seed=3, query_embedding=True, relevance_feature="cosine")
    assert featured.relevance is not None and not featured.relevance.any()
    request = topic_request("q", 25)
    (a,) = PERankReranker(model=plain).rerank([request])
    (b,) = PERankReranker(model=featured).rerank([request])
    assert [c.docid for c in a.candidates] == [c.docid for c in b.candidates]
    assert [c.score for c in a.candidates] == pytest.approx([c.score for c in b.candidates])


def test_vectors_are_projection_plus_cosine_direction(make_tiny_model):
    model = make_tiny_model(relevance_feature="cosine")
    with torch.no_grad():
        model.relevance.normal_()
        passages = ["alpha beta", "gamma", "delta epsilon zeta"]
        (vectors,), (query_vector,) = model.embed_candidates([passages], ["alpha"])
        raw = model.encoder.encode(passages + ["alpha"])
        cos = torch.nn.functional.cosine_similarity(raw[:3], raw[3:], dim=-1)
        expected = model.project(raw[:3]) + cos[:, None] * model.relevance
    assert query_vector is None  # the feature needs the query's embedding, not its token
    torch.testing.assert_close(vectors, expected)


def test_direction_saved_and_loaded(tmp_path: Path, make_tiny_model):
    model = make_tiny_model(relevance_feature="cosine")
    with torch.no_grad():
        model.relevance.normal_()
    model.save_pretrained(tmp_path / "ck", save_llm=False)
    assert json.loads((tmp_path / "ck" / "perank_config.json").read_text())["relevance_feature"] == "cosine"
    loaded = PERankModel.from_pretrained(tmp_path / "ck", dtype=torch.float32)
    torch.testing.assert_close(loaded.relevance, model.relevance)
    (tmp_path / "ck" / RELEVANCE_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=RELEVANCE_NAME):
        PERankModel.from_pretrained(tmp_path / "ck")
    with pytest.raises(ValueError, match="relevance_feature 'dot'"):
        make_tiny_model(relevance_feature="dot")


def test_init_from_adds_the_feature_to_a_lora_checkpoint(
    tmp_path: Path, tiny_models: tuple[str, str], rank_row, write_jsonl
) -> None:
    llm, enc = tiny_models
    data = write_jsonl(tmp_path / "train.jsonl", [rank_row(4, query_embedding=True, start=i) for i in range(4)])
    common = ["--model_type", "rank_lm", "--data_path", str(data), "--per_device_train_batch_size", "2"]
    common += ["--logging_steps", "1", "--report_to", "none", "--use_cpu", "--learning_rate", "1e-2"]
    common += ["--save_strategy", "no", "--model_max_length", "1024", "--tune_mlp_adapter"]
    first = tmp_path / "first"
    args = ["--model_name_or_path", llm, "--encoder_name", enc, "--query_embedding", "--lora_enable"]
    args += ["--lora_r", "4", "--lora_alpha", "8", "--output_dir", str(first), "--max_steps", "2"]
    assert main(common + args) == 0
    assert not (first / RELEVANCE_NAME).exists()

    second = tmp_path / "second"
    args = ["--init_from", str(first), "--relevance_feature", "cosine", "--output_dir", str(second)]
    assert main(common + args + ["--max_steps", "2"]) == 0
    cfg = json.loads((second / "perank_config.json").read_text())
    assert cfg["relevance_feature"] == "cosine" and cfg["query_embedding"] and cfg["llm_weights"] == "lora"
    start = PERankModel.from_pretrained(first, dtype=torch.float32)
    tuned = PERankModel.from_pretrained(second, dtype=torch.float32)
    assert tuned.relevance is not None and tuned.relevance.abs().sum() > 0  # trained off zero
    start_w = dict(start.llm.named_parameters())
    moved = [n for n, p in tuned.llm.named_parameters() if not torch.equal(p, start_w[n])]
    assert moved, "the checkpoint's LoRA adapter went on training"

    bad = ["--init_from", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "x"), "--max_steps", "1"]
    assert main(common + bad) == 2
    clash = ["--init_from", str(first), "--pretrain_mlp_adapter", str(first), "--output_dir", str(tmp_path / "y")]
    assert main(common + clash + ["--max_steps", "1"]) == 2
