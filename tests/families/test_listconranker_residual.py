"""ListConRanker's residual mode: untrained, it is its embedder's cosine (the ``dense`` family's ranking); it trains
from there (W_out leaves zero), saves only what trained over a frozen embedder, and reloads and resumes.

The published layout and its parity with the peer are tested in test_listconranker.py, unchanged by this mode.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from helpers.paths import PEERS, REPO
from perank.backends.embedding_cache import text_key
from perank.families.listconranker.checkpoint import init_model, load_model
from perank.families.listconranker.model import (
    CONFIG_NAME,
    LINEAR_IN_NAME,
    LINEAR_OUT_NAME,
    LIST_TRANSFORMER_NAME,
    TEMPLATE_PREFIX,
    ListConRankerConfig,
)
from perank.families.listconranker.reranker import ListConRankerReranker
from perank.training.runner import get_runner
from perank.types import InputError

MS = REPO / "data" / "msmarco-passage"
DL19_QUERIES = ["264014", "104861", "1110199"]


def write_groups(path: Path) -> Path:
    rows = [
        {"query": f"what is item {i}", "pos": [f"item {i} is a thing", f"all about item {i}"], "neg": ["x", "y", "z"]}
        for i in range(4)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def training_args(encoder: Path, data: Path, out: Path, *extra: str) -> list[str]:
    args = ["--model_name_or_path", str(encoder), "--residual_init", "True", "--freeze_embedder", "True"]
    args += ["--data_path", str(data), "--output_dir", str(out), "--use_cpu", "--report_to", "none"]
    args += ["--per_device_train_batch_size", "2", "--group_size", "4", "--max_length", "32"]
    args += ["--learning_rate", "1e-3", "--lr_scheduler_type", "constant", "--logging_steps", "1"]
    return [*args, *extra]


# ---------------------------------------------------------------------------------------------- step 0 = teacher


def test_untrained_residual_model_scores_the_embedders_cosine(tmp_path: Path, write_tiny_encoder) -> None:
    model = init_model(str(write_tiny_encoder(tmp_path / "encoder")), max_length=32, residual=True).eval()
    assert model.linear_out_embedding is not None
    assert not model.linear_out_embedding.weight.any() and not model.linear_out_embedding.bias.any()
    assert not hasattr(model.list_transformer, "linear_score1")  # no published scoring head in this mode
    texts = ["what is item 1", "item 1 is a thing", "x", "all about item 2", "query two", "an answer", "no"]
    lengths = [4, 3]
    with torch.no_grad():
        pooled = model.embed(model.tokenize(texts, 32))
        cosines = model.logits(pooled, lengths)
        scores = model.scores(pooled, lengths)
        model.train()  # dropout in the list transformer changes nothing while W_out is zero
        training = model.loss_scores(pooled, lengths)
    e = F.normalize(pooled, dim=-1)
    expected = torch.cat([e[1:4] @ e[0], e[5:7] @ e[4]])
    assert cosines.tolist() == pytest.approx(expected.tolist(), abs=1e-6)
    assert scores.tolist() == pytest.approx(((1 + expected) / 2).tolist(), abs=1e-6)
    assert training.tolist() == pytest.approx(expected.tolist(), abs=1e-6)  # Circle Loss reads the cosine


@pytest.mark.slow
def test_untrained_residual_minilm_ranks_dl19_as_the_dense_family(tmp_path: Path) -> None:
    from perank.families.dense.reranker import DenseReranker
    from perank.io import read_retrieval_results

    requests = [r for r in read_retrieval_results(MS / "retrieve_results_dl19.json") if r.query.qid in DL19_QUERIES]
    requests = [dataclasses.replace(r, candidates=r.candidates[:30]) for r in requests]
    assert len(requests) == len(DL19_QUERIES)
    init_model("all-minilm-l6-v2", max_length=256, residual=True).save_pretrained(tmp_path / "m", save_embedder=False)
    dense = {r.query.qid: r for r in DenseReranker().rerank(requests)}
    for mode in ("single", "iterative"):
        ranker = ListConRankerReranker(model_path=str(tmp_path / "m"), mode=mode, device="cpu")
        assert ranker.max_length == 256  # the dense family's length for this model
        for result in ranker.rerank(requests):
            teacher = dense[result.query.qid]
            assert [c.docid for c in result.candidates] == [c.docid for c in teacher.candidates], (mode, result)
            if mode == "single":  # score = (1 + cosine) / 2: the teacher's cosine to 1e-6
                cosine = {c.docid: 2 * c.score - 1 for c in result.candidates}
                assert max(abs(cosine[c.docid] - c.score) for c in teacher.candidates) < 1e-6


# ---------------------------------------------------------------------------------------------- the folder


def test_head_only_folder_points_at_its_embedder_and_reloads(tmp_path: Path, write_tiny_encoder) -> None:
    encoder = write_tiny_encoder(tmp_path / "encoder")
    model = init_model(str(encoder), max_length=32, residual=True)
    with torch.no_grad():  # a trained-looking branch, so the reload is checked on non-trivial scores
        model.linear_out_embedding.weight.normal_(std=0.1)
    model.save_pretrained(tmp_path / "head", save_embedder=False)
    files = sorted(p.name for p in (tmp_path / "head").iterdir())
    assert files == sorted([CONFIG_NAME, LINEAR_IN_NAME, LINEAR_OUT_NAME, LIST_TRANSFORMER_NAME])
    config = json.loads((tmp_path / "head" / CONFIG_NAME).read_text(encoding="utf-8"))
    assert config["residual"] is True and config["embedder"] == str(encoder)
    state = torch.load(tmp_path / "head" / LIST_TRANSFORMER_NAME, weights_only=True)
    assert not any(k.startswith(TEMPLATE_PREFIX) or k.startswith("linear_score") for k in state)
    lists = [["what is item 1", "item 1 is a thing", "x", "y"]]
    with torch.no_grad():
        pooled = model.eval().embed(model.tokenize(lists[0], 32))
        expected = model.scores(pooled, [4]).tolist()
        untrained = ((1 + F.normalize(pooled[1:], dim=-1) @ F.normalize(pooled[0], dim=-1)) / 2).tolist()
    assert max(abs(a - b) for a, b in zip(expected, untrained)) > 1e-3  # W_out != 0 shows in the scores
    head = ListConRankerReranker(model_path=str(tmp_path / "head"), device="cpu").compute_score(lists)
    assert head[0] == pytest.approx(expected, abs=1e-6)
    model.save_pretrained(tmp_path / "whole")  # with its embedder: no pointer
    assert "embedder" not in json.loads((tmp_path / "whole" / CONFIG_NAME).read_text(encoding="utf-8"))
    whole = ListConRankerReranker(model_path=str(tmp_path / "whole"), device="cpu").compute_score(lists)
    assert whole[0] == pytest.approx(expected, abs=1e-6)
    (tmp_path / "head" / LINEAR_OUT_NAME).unlink()
    with pytest.raises(InputError, match=f"no {LINEAR_OUT_NAME}"):
        load_model(str(tmp_path / "head"))


def test_published_config_file_is_unchanged_and_options_are_checked(tmp_path: Path) -> None:
    published = ListConRankerConfig.scaled(384, 12, max_length=256)
    published.save(tmp_path)
    assert set(json.loads((tmp_path / CONFIG_NAME).read_text(encoding="utf-8"))) == {
        "embedder_dim",
        "list_dim",
        "num_heads",
        "num_layers",
        "ffn_dim",
        "max_length",
    }
    assert ListConRankerConfig.load(tmp_path / CONFIG_NAME) == published
    for bad, message in (({"residual": "yes"}, "residual must be true or false"), ({"embedder": ""}, "embedder")):
        (tmp_path / CONFIG_NAME).write_text(json.dumps({**dataclasses.asdict(published), **bad}), encoding="utf-8")
        with pytest.raises(InputError, match=message):
            ListConRankerConfig.load(tmp_path / CONFIG_NAME)


def test_residual_init_refuses_a_published_head_folder() -> None:
    with pytest.raises(InputError, match="--residual_init: .* published head"):
        init_model(str(PEERS / "listconranker-tiny"), residual=True)


# ---------------------------------------------------------------------------------------------- training


def test_three_training_steps_move_w_out_and_the_folder_reloads(tmp_path: Path, write_tiny_encoder) -> None:
    encoder = write_tiny_encoder(tmp_path / "encoder")
    data = write_groups(tmp_path / "train.jsonl")
    out = tmp_path / "out"
    get_runner("listconranker").run(training_args(encoder, data, out, "--max_steps", "3", "--save_steps", "2"))
    w_out = torch.load(out / LINEAR_OUT_NAME, weights_only=True)
    assert w_out["weight"].abs().max() > 0 and w_out["bias"].abs().max() > 0  # off zero
    fresh = init_model(str(encoder), max_length=32, residual=True).list_transformer.state_dict()
    trained = torch.load(out / LIST_TRANSFORMER_NAME, weights_only=True)
    assert any(not torch.equal(fresh[k], trained[k]) for k in fresh)  # the branch behind W_out trains too
    assert not (out / "model.safetensors").exists()  # the frozen embedder is not copied
    assert json.loads((out / CONFIG_NAME).read_text(encoding="utf-8"))["embedder"] == str(encoder)
    assert (tmp_path / "out" / "checkpoint-2" / "model.safetensors").is_file()  # what a resumed Trainer reads
    log = json.loads((out / "trainer_state.json").read_text(encoding="utf-8"))["log_history"]
    steps = [row for row in log if "loss" in row]
    assert len(steps) == 3 and all(row["s_per_step"] > 0 for row in steps)
    ranker = ListConRankerReranker(model_path=str(out), device="cpu")
    assert ranker.describe()["max_length"] == 32
    result = ranker.rank("what is item 1", ["item 1 is a thing", "x", "z"])
    assert len(result.candidates) == 3 and all(0 <= c.score <= 1 for c in result.candidates)


def test_a_resumed_residual_run_equals_an_uninterrupted_one(tmp_path: Path, write_tiny_encoder, caplog) -> None:
    encoder = write_tiny_encoder(tmp_path / "encoder")
    data = write_groups(tmp_path / "train.jsonl")
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    get_runner("listconranker").run(training_args(encoder, data, whole, "--max_steps", "3", "--save_steps", "2"))
    get_runner("listconranker").run(training_args(encoder, data, resumed, "--max_steps", "2", "--save_steps", "2"))
    with caplog.at_level(logging.INFO, logger="perank.train"):  # from checkpoint-2, which holds no embedder
        get_runner("listconranker").run(training_args(encoder, data, resumed, "--max_steps", "3", "--save_steps", "2"))
    assert f"resuming from {resumed / 'checkpoint-2'}" in caplog.text
    for name in (LINEAR_IN_NAME, LIST_TRANSFORMER_NAME, LINEAR_OUT_NAME):
        a, b = (torch.load(d / name, weights_only=True) for d in (whole, resumed))
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_preloaded_teacher_embeddings_are_used_and_checked(tmp_path: Path, write_tiny_encoder, monkeypatch) -> None:
    from perank.families.listconranker.model import ListConRankerModel

    encoder = write_tiny_encoder(tmp_path / "encoder")
    data = write_groups(tmp_path / "train.jsonl")
    texts = sorted({t for row in map(json.loads, data.read_text().splitlines()) for t in row_texts(row)})
    model = init_model(str(encoder), max_length=32).eval()
    with torch.no_grad():
        vectors = F.normalize(model.embed(model.tokenize(texts, 32)), dim=-1)  # as the dense teacher stores them
    torch.save({text_key(t): v for t, v in zip(texts, vectors)}, tmp_path / "emb.pt")
    embedded: list[int] = []
    real_embed = ListConRankerModel.embed
    monkeypatch.setattr(
        ListConRankerModel,
        "embed",
        lambda self, batch: embedded.append(len(batch["input_ids"])) or real_embed(self, batch),
    )
    plain, cached = tmp_path / "plain", tmp_path / "cached"
    get_runner("listconranker").run(training_args(encoder, data, plain, "--max_steps", "2"))
    assert sum(embedded) >= 10  # the training texts, embedded as the steps meet them
    embedded.clear()
    cache = ["--embedding_cache", str(tmp_path / "emb.pt")]
    get_runner("listconranker").run(training_args(encoder, data, cached, "--max_steps", "2", *cache))
    assert embedded == [4]  # only the probes that check the file; every training text came from it
    a, b = (torch.load(d / LINEAR_OUT_NAME, weights_only=True)["weight"] for d in (plain, cached))
    assert torch.allclose(a, b, atol=1e-5)  # a normalised vector stands for the pooled one exactly

    other = write_tiny_encoder(tmp_path / "other", seed=1)
    with pytest.raises(InputError, match="not this embedder's"):
        get_runner("listconranker").run(training_args(other, data, tmp_path / "x", "--max_steps", "1", *cache))
    published = [a for a in training_args(encoder, data, tmp_path / "y", "--max_steps", "1", *cache)]
    published[published.index("--residual_init") + 1] = "False"
    with pytest.raises(InputError, match="only for a residual model"):
        get_runner("listconranker").run(published)


def row_texts(row: dict) -> list[str]:
    return [row["query"], *row["pos"], *row["neg"]]
