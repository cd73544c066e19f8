"""``--family jina-listwise``: the losses by hand, training prompts against the reranker's, a CPU run whose small
folder the reranker loads with the trained model's scores, resuming, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from perank.ranking.registry import build_reranker
from perank.training.rank_losses import top_cross_entropy
from perank.training.runner import get_runner
from perank.types import InputError

# ------------------------------------------------------------------------------------------------ losses


def test_top_cross_entropy_by_hand() -> None:
    """List A: scores (0.5, 0.2, 0.9), teacher top = candidate 1 (position 0); list B: (0.1, 0.3), top = 0. At
    scale 2: A's loss is -0.4 + log(e^1 + e^0.4 + e^1.8), B's -0.2 + log(e^0.2 + e^0.6); the mean of the two."""
    scores = torch.tensor([0.5, 0.2, 0.9, 0.1, 0.3])
    positions = torch.tensor([1, 0, 2, 0, 1])
    a = -0.4 + torch.log(torch.exp(torch.tensor([1.0, 0.4, 1.8])).sum()).item()
    b = -0.2 + torch.log(torch.exp(torch.tensor([0.2, 0.6])).sum()).item()
    assert top_cross_entropy(scores, positions, [3, 2], scale=2.0).item() == pytest.approx((a + b) / 2, abs=1e-6)


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory, write_tiny_llm) -> Path:
    """A 2-layer random Llama with SmolLM2's tokenizer (no markers: training adds them)."""
    return write_tiny_llm(tmp_path_factory.mktemp("jina") / "llm")


def rows_file(path: Path, rank_row, n_rows: int = 4, n: int = 6, **changes: object) -> Path:
    rows = [{**rank_row(n, start=s), **changes} for s in range(n_rows)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def common_flags(llm: Path, data: Path, out: Path) -> list[str]:
    return [
        *("--model_name_or_path", str(llm), "--data_path", str(data), "--output_dir", str(out)),
        *("--use_cpu", "--report_to", "none", "--per_device_train_batch_size", "2", "--slate_size", "4"),
        *("--max_doc_length", "8", "--max_query_length", "6", "--learning_rate", "5e-3", "--save_steps", "2"),
        *("--logging_steps", "1", "--lr_scheduler_type", "constant", "--seed", "3", "--projection_dim", "16"),
    ]


def fresh_model(llm: Path):
    """The training model as a run with ``common_flags`` starts it (seed 3)."""
    from perank.families.jina_listwise.training.arguments import ModelArguments
    from perank.families.jina_listwise.training.model import build_training_model

    return build_training_model(ModelArguments(model_name_or_path=str(llm), projection_dim=16), 3)[0]


def trained_model(llm: Path, checkpoint: Path):
    """The training model as the Trainer holds it after the checkpoint's step (its fresh parts rebuilt from the
    seed and the checkpoint's trainable tensors loaded, as a resumed run does), in eval mode, with its tokenizer."""
    from safetensors.torch import load_file

    from perank.families.jina_listwise.training.arguments import ModelArguments
    from perank.families.jina_listwise.training.model import build_training_model

    model, tokenizer = build_training_model(ModelArguments(model_name_or_path=str(llm), projection_dim=16), 3)
    state = load_file(str(checkpoint / "model.safetensors"))
    assert not model.load_state_dict(state, strict=False).unexpected_keys
    return model.eval(), tokenizer


# ------------------------------------------------------------------------------------------------ prompts


@pytest.mark.slow
def test_training_prompts_are_the_reranker_prompts(tmp_path: Path, llm: Path, rank_row) -> None:
    """An untrained save: the reranker loads it, its prompt for a slate is the collator's to the token (texts cut
    at 8 tokens, markers added to SmolLM2's tokenizer) and its scores are the training model's."""
    from perank.families.jina_listwise.blocks import PromptLimits
    from perank.families.jina_listwise.trained import save_layout
    from perank.families.jina_listwise.training.arguments import ModelArguments
    from perank.families.jina_listwise.training.data import PromptCollator
    from perank.families.jina_listwise.training.model import build_training_model

    model, tokenizer = build_training_model(ModelArguments(model_name_or_path=str(llm), projection_dim=16), 0)
    assert len(tokenizer) == 49154 and tokenizer.convert_ids_to_tokens([49152, 49153]) == [
        "<|embed_token|>",
        "<|rerank_token|>",
    ]
    with torch.no_grad():  # a marker row unlike the mean, so that loading must carry it over
        model.markers.rows[0].normal_()
    settings = {"max_query_length": 6, "max_doc_length": 8, "max_length": 8192, "block_size": 5}
    save_layout(
        tmp_path / "saved",
        adapter=model.adapter,
        projector=model.scorer.projector,
        marker_rows=model.markers.rows,
        tokenizer=tokenizer,
        config={"base": str(llm), "settings": settings},
    )
    reranker = build_reranker("jina-listwise", model_path=str(tmp_path / "saved"), device="cpu")
    assert {k: reranker.describe()[k] for k in settings} == settings
    row = rank_row(5, start=2)
    query, passages = row["query"] + " with a longer tail of words", row["extra_texts"][:5]
    collator = PromptCollator(tokenizer, PromptLimits(6, 8, 8192, 5))
    batch = collator([{"query": query, "window": passages, "slate": [0, 1, 2, 3, 4], "positions": row["ranking"]}])
    prompts, blocks, docs = reranker.block_prompts(query, passages)
    assert len(blocks) == 1 and sum(d.cut for d in docs) == 5
    assert batch["input_ids"][0].tolist() == reranker.tokenizer(prompts[0])["input_ids"]
    with torch.no_grad():
        trained = model.eval()(batch["input_ids"], batch["attention_mask"]).scores[0]
    scores = {int(c.docid): c.score for c in reranker.rank(query, passages).candidates}
    assert max(abs(scores[i] - float(s)) for i, s in enumerate(trained)) < 1e-5


# ------------------------------------------------------------------------------------------------ training runs


@pytest.mark.slow
def test_three_steps_write_a_small_folder_the_reranker_loads(tmp_path: Path, llm: Path, rank_row) -> None:
    from safetensors.torch import load_file

    out = tmp_path / "out"
    data = rows_file(tmp_path / "rows.jsonl", rank_row)
    get_runner("jina-listwise").run([*common_flags(llm, data, out), "--max_steps", "3", "--save_steps", "3"])
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "projector.safetensors"} <= names
    assert {"marker_embeddings.safetensors", "jina_listwise_config.json", "tokenizer.json"} <= names
    assert "model.safetensors" not in names and (out / "checkpoint-3" / "model.safetensors").is_file()
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(llm)
    adapter = load_file(out / "adapter_model.safetensors")
    assert not any("embed" in k for k in adapter)  # the marker rows live apart, the matrix is not saved
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)  # B starts at zero
    config = json.loads((out / "jina_listwise_config.json").read_text())
    assert config["settings"] == {"max_query_length": 6, "max_doc_length": 8, "max_length": 8192, "block_size": 4}
    assert config["projector"] == [64, 32, 16]
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    steps = [line for line in history if "loss" in line]
    assert len(steps) == 3 and all({"loss_infonce", "loss_ranknet", "step_seconds"} <= set(line) for line in steps)
    assert all(0 < line["loss_infonce"] < 10 and 0 < line["loss_ranknet"] < 10 for line in steps)

    model, tokenizer = trained_model(llm, out / "checkpoint-3")
    fresh = fresh_model(llm)
    projector = load_file(out / "projector.safetensors")
    assert not torch.allclose(projector["projector.0.weight"], fresh.scorer.projector[0].weight)  # it trained
    assert torch.equal(projector["projector.0.weight"], model.scorer.projector[0].weight)
    rows = load_file(out / "marker_embeddings.safetensors")
    assert not torch.allclose(rows["doc"], rows["query"])  # both started at the vocabulary mean: training moved them
    assert torch.equal(rows["doc"], model.markers.rows[0].detach())
    reranker = build_reranker("jina-listwise", model_path=str(out), device="cpu")
    assert reranker.block_size == 4 and reranker.max_doc_length == 8
    from perank.families.jina_listwise.training.data import PromptCollator

    row = rank_row(4, start=1)
    query, passages = row["query"], row["extra_texts"][:4]
    batch = PromptCollator(tokenizer, reranker_limits(reranker))(
        [{"query": query, "window": passages, "slate": [0, 1, 2, 3], "positions": [3, 2, 1, 0]}]
    )
    with torch.no_grad():
        trained = model(batch["input_ids"], batch["attention_mask"]).scores[0]
    scores = {int(c.docid): c.score for c in reranker.rank(query, passages).candidates}
    assert max(abs(scores[i] - float(s)) for i, s in enumerate(trained)) < 1e-5


def reranker_limits(reranker):
    from perank.families.jina_listwise.blocks import PromptLimits

    return PromptLimits(reranker.max_query_length, reranker.max_doc_length, reranker.max_length, reranker.block_size)


@pytest.mark.slow
def test_repeating_one_list_lowers_its_loss(tmp_path: Path, llm: Path, rank_row) -> None:
    """Eight steps on the same list (all 6 candidates, no redraw): the gradients reach the scores, so the loss
    on it falls (a sign error or a detached part would leave it flat or raise it)."""
    data = rows_file(tmp_path / "rows.jsonl", rank_row, n_rows=1)
    flags = [*common_flags(llm, data, tmp_path / "out"), "--max_steps", "8", "--save_strategy", "no"]
    flags[flags.index("--slate_size") + 1] = "6"
    get_runner("jina-listwise").run(flags)
    history = json.loads((tmp_path / "out" / "trainer_state.json").read_text())["log_history"]
    losses = [line["loss"] for line in history if "loss" in line]
    assert len(losses) == 8 and losses[-1] < 0.5 * losses[0], losses


@pytest.mark.slow
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path: Path, llm: Path, rank_row) -> None:
    from safetensors.torch import load_file

    data = rows_file(tmp_path / "rows.jsonl", rank_row)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    get_runner("jina-listwise").run([*common_flags(llm, data, whole), "--max_steps", "4"])
    get_runner("jina-listwise").run([*common_flags(llm, data, resumed), "--max_steps", "2"])
    get_runner("jina-listwise").run([*common_flags(llm, data, resumed), "--max_steps", "4"])  # checkpoint-2 on
    assert json.loads((resumed / "trainer_state.json").read_text())["global_step"] == 4
    for name in ("adapter_model.safetensors", "projector.safetensors", "marker_embeddings.safetensors"):
        a, b = (load_file(d / name) for d in (whole, resumed))
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), name


# ------------------------------------------------------------------------------------------------ refusals


def test_dl19_queries_are_refused(tmp_path: Path, llm: Path, rank_row) -> None:
    from perank.io import read_qrels, read_topics
    from perank.training.holdout import dl19_qrels_path, dl19_topics_path

    out = tmp_path / "out"
    qid, text = next(iter(read_topics(dl19_topics_path()).items()))
    leaked = rows_file(tmp_path / "text.jsonl", rank_row, query=text.upper() + " ")
    with pytest.raises(InputError, match=r"held-out \(DL19\) topic"):
        get_runner("jina-listwise").run(common_flags(llm, leaked, out))
    judged = rows_file(tmp_path / "qid.jsonl", rank_row, qid=next(iter(read_qrels(dl19_qrels_path()))))
    with pytest.raises(InputError, match="judged in .*qrels.dl19-passage.txt"):
        get_runner("jina-listwise").run(common_flags(llm, judged, out))
    assert qid and not out.exists()  # refused before any step


def test_bad_rows_and_flags_are_named(tmp_path: Path, llm: Path, rank_row) -> None:
    good = rank_row(4)
    bad = tmp_path / "bad.jsonl"
    bad_rows = [good, {**good, "ranking": [0, 0, 1, 2]}, {**good, "query": ""}]
    bad.write_text("".join(json.dumps(r) + "\n" for r in bad_rows), encoding="utf-8")
    with pytest.raises(InputError, match=r"2 bad training row\(s\):\n.*bad.jsonl:2: 'ranking' is not a permutation"):
        get_runner("jina-listwise").run(common_flags(llm, bad, tmp_path / "out"))
    flags = common_flags(llm, rows_file(tmp_path / "rows.jsonl", rank_row), tmp_path / "out")
    for extra, message in (
        (["--slate_size", "1"], "--slate_size 1: must be at least 2"),
        (["--temperature", "0"], "--temperature 0.0: must be positive"),
        (["--max_doc_length", "0"], "--max_doc_length 0: must be at least 1"),
        (["--lora_enable", "False"], "--lora_enable False"),
        (["--loss_infonce_factor", "0", "--loss_ranknet_factor", "0"], "not both 0"),
        (["--no_such_flag", "1"], "unknown argument"),
    ):
        with pytest.raises(InputError, match=message):
            get_runner("jina-listwise").run([*flags, *extra])
    with pytest.raises(InputError, match="--data_path .*missing.jsonl: file not found"):
        get_runner("jina-listwise").run(common_flags(llm, tmp_path / "missing.jsonl", tmp_path / "out"))
    with pytest.raises(InputError, match="does not fit one prompt of 40 tokens: lower --slate_size"):
        from perank.backends.lm_loading import load_tokenizer
        from perank.families.jina_listwise.blocks import PromptLimits
        from perank.families.jina_listwise.training.data import PromptCollator

        row = rank_row(4)
        item = {"query": row["query"], "window": row["extra_texts"][:4], "slate": [0, 1, 2, 3], "positions": [0] * 4}
        PromptCollator(load_tokenizer(llm), PromptLimits(6, 8, 40, 4))([item])


def test_a_broken_trained_folder_is_named(tmp_path: Path) -> None:
    from perank.families.jina_listwise.trained import CONFIG_NAME

    folder = tmp_path / "trained"
    folder.mkdir()
    (folder / CONFIG_NAME).write_text(json.dumps({"base": "smollm2", "settings": {"block_size": 0}}))
    with pytest.raises(InputError, match=r"settings.block_size=0"):
        build_reranker("jina-listwise", model_path=str(folder), device="cpu")
    (folder / CONFIG_NAME).write_text(json.dumps({"base": "smollm2", "settings": {}}))
    with pytest.raises(InputError, match=r"projector.safetensors: missing"):
        build_reranker("jina-listwise", model_path=str(folder), device="cpu")


def test_the_recipe_command_parses_and_validates(tmp_path: Path, rank_row, recipe_arguments) -> None:
    """``recipes/jina_listwise/train_small.sh``'s flags are the runner's (shell variables given plausible values)."""
    args = recipe_arguments("jina-listwise", rows_file(tmp_path / "rows.jsonl", rank_row), tmp_path / "out")
    assert args.model.model_name_or_path == "smollm2" and args.data.slate_size == 12
