"""``--family e2rank``: E2Rank's two losses by hand and against its own formulation, the texts training embeds
against the reranker's, a CPU training run whose folder the reranker loads, resuming, and the held-out refusals."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import pytest
import torch
from torch import nn

from perank.families.e2rank.training.losses import contrastive_loss, list_scores, ranknet_loss
from perank.ranking.registry import build_reranker
from perank.training.runner import get_runner
from perank.types import InputError

# ------------------------------------------------------------------------------------------------ losses


def test_contrastive_loss_by_hand() -> None:
    """Two queries against three documents at temperature 0.5; query 0's positive is row 0, query 1's row 2.
    Query 0's logits are (2, 0, 1.2), query 1's (0, 2, 1.6): CE = -logit[pos] + log(sum(exp(logits)))."""
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    documents = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    loss = contrastive_loss(queries, documents, torch.tensor([0, 2]), temperature=0.5)
    # (-2 + log(e^2 + 1 + e^1.2) + -1.6 + log(1 + e^2 + e^1.6)) / 2
    assert loss.item() == pytest.approx((0.4603725535673182 + 0.990923589202036) / 2, abs=1e-6)


def test_ranknet_loss_by_hand() -> None:
    """List A: scores (0.5, 0.2, 0.9), teacher order 0, 2, 1, so the pairs (0>1, 0>2, 2>1) have score gaps
    (0.3, -0.4, 0.7); list B: (0.1, 0.3), teacher order 1, 0: the pair 1>0, gap 0.2. At scale 10 each pair costs
    softplus(-10 * gap), and the loss is the mean over the four pairs of the batch."""
    scores = torch.tensor([0.5, 0.2, 0.9, 0.1, 0.3])
    positions = torch.tensor([0, 2, 1, 1, 0])
    assert ranknet_loss(scores[:3], positions[:3], [3], scale=10.0).item() == pytest.approx(1.3558829153, abs=1e-6)
    assert ranknet_loss(scores, positions, [3, 2], scale=10.0).item() == pytest.approx(1.0486441892, abs=1e-6)


def _e2rank_rank_net(scores: torch.Tensor, ranking: torch.Tensor, scale: float) -> torch.Tensor:
    """E2Rank's formulation (``modeling.py:207-216`` and ``rank_net``): relevance ``n - rank position`` on a
    ``[batch, n]`` grid, every index pair by ``itertools.product``, the pairs with a positive relevance gap, one
    ``BCEWithLogitsLoss`` towards 1 over all of them."""
    batch, n = ranking.shape
    position = torch.empty_like(ranking)
    position.scatter_(1, ranking, torch.arange(n).expand(batch, -1))
    relevance = (n - position).float()
    pairs = list(product(range(n), repeat=2))
    true = relevance[:, pairs]
    pred = (scores * scale)[:, pairs]
    gaps, mask = pred[:, :, 0] - pred[:, :, 1], (true[:, :, 0] - true[:, :, 1]) > 0
    return nn.BCEWithLogitsLoss()(gaps[mask], torch.ones_like(gaps[mask]))


def test_ranknet_loss_equals_e2rank_formulation() -> None:
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(3, 5, generator=gen) * 2 - 1
    ranking = torch.stack([torch.randperm(5, generator=gen) for _ in range(3)])  # ranking[b, k]: index at rank k
    positions = torch.empty_like(ranking)
    positions.scatter_(1, ranking, torch.arange(5).expand(3, -1))
    ours = ranknet_loss(scores.flatten(), positions.flatten(), [5, 5, 5], scale=10.0)
    assert ours.item() == pytest.approx(_e2rank_rank_net(scores, ranking, 10.0).item(), abs=1e-6)


def test_list_scores_pair_each_candidate_with_its_own_pseudo_query() -> None:
    pseudo = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    documents = torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.2, 0.9], [0.3, 0.4], [0.0, 1.0]])
    assert list_scores(pseudo, documents, [2, 3]).tolist() == pytest.approx([0.5, 1.0, 0.9, 0.4, 1.0])


# ------------------------------------------------------------------------------------------------ data and texts


@pytest.fixture()
def encoder(tmp_path: Path, write_tiny_encoder) -> Path:
    return write_tiny_encoder(tmp_path / "encoder")


def rows_file(path: Path, rank_row, n_rows: int = 6, **changes: object) -> Path:
    """``n_rows`` ranking rows of 4 passages each (the PE-Rank stage-2 rows of ``perank build-rank-data``)."""
    rows = [{**rank_row(4, start=s), **changes} for s in range(n_rows)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_training_embeds_what_the_reranker_embeds(encoder: Path, rank_row) -> None:
    """The collator's pseudo-queries, plain queries and candidates are the reranker's texts, tokenised alike,
    and the trained model's embedding of them (no adapter yet, eval mode) is the reranker's vector."""
    from perank.families.e2rank.training.data import RankedList, RankedListCollator, RankedListDataset
    from perank.families.e2rank.training.trainer import embed

    reranker = build_reranker("e2rank", model_path=str(encoder), k=3, prompt="query-first", device="cpu")
    row = rank_row(4, start=1)
    dataset = RankedListDataset([RankedList("1", row["query"], row["extra_texts"][:4], row["ranking"])])
    batch = RankedListCollator(reranker.embedder.model, reranker.texts)([dataset[0]])
    tokenizer = reranker.embedder.tokenizer
    pseudo = reranker.pseudo_query(row["query"], row["extra_texts"][:4])
    assert pseudo.startswith(f"Search Query: {row['query']}\nDocuments:\n[1] ")
    assert batch["pseudo_queries"]["input_ids"][0].tolist() == tokenizer(pseudo)["input_ids"]
    model = reranker.embedder.model.eval()
    with torch.no_grad():
        trained = embed(model, batch["pseudo_queries"])
        documents = embed(model, batch["documents"])
    assert torch.allclose(trained, reranker.embedder.encode_texts([pseudo]).cpu(), atol=1e-6)
    assert torch.allclose(documents, reranker.embedder.encode_documents(row["extra_texts"][:4]).cpu(), atol=1e-6)
    # the teacher ranks the window in reverse: the last candidate is the positive, first in teacher order
    assert batch["positives"].tolist() == [3] and batch["positions"].tolist() == [3, 2, 1, 0]


def test_a_slate_keeps_the_teacher_top_and_is_redrawn_each_epoch(rank_row) -> None:
    from perank.families.e2rank.training.data import RankedList, RankedListDataset

    row = rank_row(8)
    dataset = RankedListDataset([RankedList("0", row["query"], row["extra_texts"][:8], row["ranking"])], 3, seed=1)
    slates = []
    for epoch in range(6):
        dataset.set_epoch(epoch)
        item = dataset[0]
        assert len(item["slate"]) == 3 and row["ranking"][0] in item["slate"] and 0 in item["positions"]
        assert item["slate"] == sorted(item["slate"]) and dataset[0] == item  # window order; reproducible
        slates.append(tuple(item["slate"]))
    assert len(set(slates)) > 1


# ------------------------------------------------------------------------------------------------ training runs


def common_flags(encoder: Path, data: Path, out: Path) -> list[str]:
    return [
        *("--model_name_or_path", str(encoder), "--data_path", str(data), "--output_dir", str(out)),
        *("--use_cpu", "--report_to", "none", "--per_device_train_batch_size", "2", "--k", "3"),
        *("--prompt", "query-first", "--max_length", "64", "--learning_rate", "1e-3", "--save_steps", "2"),
        *("--logging_steps", "1", "--lr_scheduler_type", "constant", "--seed", "3"),
    ]


def test_three_steps_write_a_folder_the_reranker_loads(tmp_path: Path, encoder: Path, rank_row) -> None:
    from safetensors.torch import load_file

    out = tmp_path / "out"
    get_runner("e2rank").run(
        [*common_flags(encoder, rows_file(tmp_path / "rows.jsonl", rank_row), out), "--max_steps", "3"]
    )
    adapter = out / "adapter_model.safetensors"
    assert (out / "adapter_config.json").is_file() and adapter.stat().st_size < 1_000_000  # no copy of the base
    assert not (out / "model.safetensors").exists() and (out / "checkpoint-2" / "adapter_model.safetensors").is_file()
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(encoder)
    assert any(v.abs().sum() > 0 for k, v in load_file(adapter).items() if "lora_B" in k)  # B starts at zero
    settings = json.loads((out / "e2rank_config.json").read_text())
    assert settings == {"task": "web-search", "prompt": "query-first", "k": 3, "passage_words": 1024, "max_length": 64}
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    steps = [line for line in history if "loss" in line]
    assert len(steps) == 3 and all({"loss_embed", "loss_ranknet", "step_seconds"} <= set(line) for line in steps)

    trained = build_reranker("e2rank", model_path=str(out), device="cpu")
    assert {k: trained.describe()[k] for k in settings} == settings  # the recorded settings are its defaults
    assert build_reranker("e2rank", model_path=str(out), k=2, device="cpu").describe()["k"] == 2  # options win
    query, passages = "query about topic 1", ["passage number 1 about topic 1", "another passage", "x y z"]
    result = trained.rank(query, passages)
    assert sorted(c.docid for c in result.candidates) == ["0", "1", "2"]
    base = build_reranker("e2rank", model_path=str(encoder), device="cpu", k=3, prompt="query-first", max_length=64)
    assert [c.score for c in base.rank(query, passages).candidates] != [c.score for c in result.candidates]


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path: Path, encoder: Path, rank_row) -> None:
    from safetensors.torch import load_file

    data = rows_file(tmp_path / "rows.jsonl", rank_row)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    slate = ["--slate_size", "3", "--lora_dropout", "0.1"]  # the random parts must be replayed too
    get_runner("e2rank").run([*common_flags(encoder, data, whole), *slate, "--max_steps", "4"])
    get_runner("e2rank").run([*common_flags(encoder, data, resumed), *slate, "--max_steps", "2"])
    get_runner("e2rank").run([*common_flags(encoder, data, resumed), *slate, "--max_steps", "4"])  # checkpoint-2 on
    assert json.loads((resumed / "trainer_state.json").read_text())["global_step"] == 4
    a, b = (load_file(d / "adapter_model.safetensors") for d in (whole, resumed))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_one_loss_alone_trains_and_both_off_is_refused(tmp_path: Path, encoder: Path, rank_row) -> None:
    data = rows_file(tmp_path / "rows.jsonl", rank_row)
    flags = [*common_flags(encoder, data, tmp_path / "out"), "--max_steps", "1", "--save_strategy", "no"]
    get_runner("e2rank").run([*flags, "--loss_ranknet_factor", "0"])
    lines = json.loads((tmp_path / "out" / "trainer_state.json").read_text())["log_history"]
    assert "loss_embed" in lines[0] and "loss_ranknet" not in lines[0]
    with pytest.raises(InputError, match="not both 0"):
        get_runner("e2rank").run([*flags, "--loss_ranknet_factor", "0", "--loss_embed_factor", "0"])


# ------------------------------------------------------------------------------------------------ refusals


def test_dl19_queries_are_refused(tmp_path: Path, encoder: Path, rank_row) -> None:
    from perank.io import read_qrels, read_topics
    from perank.training.holdout import dl19_qrels_path, dl19_topics_path

    out = tmp_path / "out"
    qid, text = next(iter(read_topics(dl19_topics_path()).items()))
    leaked = rows_file(tmp_path / "text.jsonl", rank_row, query=text.upper() + " ")
    with pytest.raises(InputError, match=r"held-out \(DL19\) topic"):
        get_runner("e2rank").run(common_flags(encoder, leaked, out))
    judged = rows_file(tmp_path / "qid.jsonl", rank_row, qid=next(iter(read_qrels(dl19_qrels_path()))))
    with pytest.raises(InputError, match="judged in .*qrels.dl19-passage.txt"):
        get_runner("e2rank").run(common_flags(encoder, judged, out))
    mine = tmp_path / "mine.qrels"
    mine.write_text("0 0 d 1\n", encoding="utf-8")
    with pytest.raises(InputError, match="judged in .*mine.qrels"):
        flags = common_flags(encoder, rows_file(tmp_path / "rows.jsonl", rank_row), out)
        get_runner("e2rank").run([*flags, "--forbid_qrels", str(mine)])
    assert qid  # the DL19 topics file is shipped, so the default refusal is not vacuous


def test_bad_rows_and_flags_are_named(tmp_path: Path, encoder: Path, rank_row) -> None:
    good = rank_row(4)
    bad_rows = [
        good,
        {**good, "ranking": [0, 0, 1, 2]},
        {**good, "query": ""},
        {k: v for k, v in good.items() if k != "qid"},
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in bad_rows), encoding="utf-8")
    with pytest.raises(InputError, match=r"3 bad training row\(s\):\n.*bad.jsonl:2: 'ranking' is not a permutation"):
        get_runner("e2rank").run(common_flags(encoder, bad, tmp_path / "out"))
    data = rows_file(tmp_path / "rows.jsonl", rank_row)
    flags = common_flags(encoder, data, tmp_path / "out")
    for extra, message in (
        (["--prompt", "rankgpt"], "option prompt='rankgpt'"),
        (["--slate_size", "1"], "--slate_size 1"),
        (["--temperature", "0"], "--temperature 0.0"),
        (["--task", "dl21"], "option task='dl21': unknown"),
    ):
        with pytest.raises(InputError, match=message):
            get_runner("e2rank").run([*flags, *extra])
    with pytest.raises(InputError, match="--data_path .*missing.jsonl: file not found"):
        get_runner("e2rank").run(common_flags(encoder, tmp_path / "missing.jsonl", tmp_path / "out"))


def test_an_adapter_whose_base_is_gone_is_named(tmp_path: Path, encoder: Path, rank_row) -> None:
    out = tmp_path / "out"
    flags = common_flags(encoder, rows_file(tmp_path / "rows.jsonl", rank_row), out)
    get_runner("e2rank").run([*flags, "--max_steps", "1", "--save_strategy", "no"])
    config = json.loads((out / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "gone")
    (out / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="base model .*gone cannot be loaded"):
        build_reranker("e2rank", model_path=str(out), device="cpu")


def test_the_recipe_command_parses_and_validates(tmp_path: Path, rank_row, recipe_arguments) -> None:
    """``recipes/e2rank/train_small.sh``'s flags are the runner's (shell variables given plausible values)."""
    args = recipe_arguments("e2rank", rows_file(tmp_path / "rows.jsonl", rank_row), tmp_path / "out")
    assert (args.data.prompt, args.data.k, args.data.slate_size) == ("query-first", 10, 8)
