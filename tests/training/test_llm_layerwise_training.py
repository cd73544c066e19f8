"""``--family llm-layerwise``: the layered loss by hand, the heads' start (the last one is the 'Yes' logit), CPU runs on
a tiny 3-layer Llama whose small folder the ``llm-layerwise`` reranker loads and scores as the trained model does,
resuming, the refusals, and the recipe's flags."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from perank.api import Reranker
from perank.cli.train import main as train_main
from perank.training.group_loss import group_loss, layered_group_loss
from perank.types import InputError

QUERY, POSITIVE = "how long do fleas live", "fleas live up to a year"
NEGATIVES = ["concrete floors cost money", "paris is in france"]
PAIRS = [(QUERY, POSITIVE), (QUERY, NEGATIVES[0]), ("where is paris", NEGATIVES[1]), ("q", "a much longer passage x")]


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory, write_tiny_llm) -> Path:
    """A 3-layer random Llama with SmolLM2's tokenizer: heads on layers 2 and 3 with ``--start_layer 2``."""
    return write_tiny_llm(tmp_path_factory.mktemp("layerwise") / "llm", layers=3)


def write_groups(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def flags(llm: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        *("--family", "llm-layerwise", "--model_name_or_path", str(llm), "--start_layer", "2"),
        *("--data_path", str(data), "--output_dir", str(out), "--use_cpu", "--report_to", "none"),
        *("--per_device_train_batch_size", "2", "--group_size", "3", "--query_max_len", "16"),
        *("--passage_max_len", "24", "--dataloader_num_workers", "0", "--seed", "0", "--logging_steps", "1"),
        *("--learning_rate", "5e-3", "--lr_scheduler_type", "constant"),
        *extra,
    ]


def fresh_model(llm: Path, start_layer: int = 2):
    from perank.families.llm_layerwise.training import ModelArguments, build_training_model

    return build_training_model(ModelArguments(model_name_or_path=str(llm), start_layer=start_layer))


def trained_model(llm: Path, checkpoint: Path):
    """The training model as the Trainer holds it after the checkpoint's step (the checkpoint's trainable tensors
    loaded into a fresh one, as a resumed run does), in eval mode, with its tokenizer."""
    from safetensors.torch import load_file

    model, tokenizer = fresh_model(llm)
    assert not model.load_state_dict(load_file(str(checkpoint / "model.safetensors")), strict=False).unexpected_keys
    return model.eval(), tokenizer


def model_scores(model, tokenizer, pairs: list[tuple[str, str]]) -> torch.Tensor:
    """``[pairs, heads]``: the training model's scores of ``pairs``, encoded by the training collator."""
    from perank.training.llm_pairs import DecoderPairCollator, LLMPairDataArguments

    collator = DecoderPairCollator.for_run(tokenizer, LLMPairDataArguments(query_max_len=16, passage_max_len=24))
    batch = collator([{"query": q, "passages": [p]} for q, p in pairs])
    with torch.no_grad():
        return model(batch["input_ids"], batch["attention_mask"])


# ------------------------------------------------------------------------------------------------ the loss


def test_layered_loss_by_hand() -> None:
    """One group of two, two heads: without a teacher, both heads' cross-entropy plus the first head's KL to the
    last one's (detached) distribution; with one, each head's group loss with the teacher's KL and no
    self-distillation (FlagEmbedding's layerwise loss)."""
    logits = torch.tensor([[[1.0, 2.0], [0.0, -1.0]]], requires_grad=True)  # [group, size, heads]
    first, last = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, -1.0]])
    ce = [-(x[0, 0] - torch.logsumexp(x[0], dim=0)) for x in (first, last)]
    p_last = torch.softmax(last[0], dim=0)
    kl = (p_last * (torch.log(p_last) - torch.log_softmax(first[0], dim=0))).sum()
    loss, parts = layered_group_loss(logits)
    assert loss.item() == pytest.approx((ce[0] + ce[1] + kl).item(), abs=1e-6)
    assert parts["loss_last"].item() == pytest.approx(ce[1].item(), abs=1e-6)
    assert parts["loss_self_distill"].item() == pytest.approx(kl.item(), abs=1e-6)
    loss.backward()  # the last head learns from the cross-entropy only: its target is detached
    assert torch.allclose(logits.grad[0, :, 1], torch.softmax(last[0], dim=0) - torch.tensor([1.0, 0.0]), atol=1e-6)

    teacher = torch.tensor([[0.9, 0.1]])
    loss, parts = layered_group_loss(logits, teacher, 1.0, 1.0, 0.05)
    expected = sum(group_loss(x, teacher, 1.0, 1.0, 0.05) for x in (first, last))
    assert loss.item() == pytest.approx(float(expected), abs=1e-6) and "loss_self_distill" not in parts
    assert layered_group_loss(logits[..., :1])[0].item() == pytest.approx(ce[0].item(), abs=1e-6)


def test_at_step_0_the_last_head_is_the_yes_logit(tmp_path: Path, llm: Path) -> None:
    """Every head starts at the LM head's 'Yes' row, so the untrained last layer ranks exactly as ``llm-yes-no`` on
    the base; the folder of an untrained model loads in the reranker with that score."""
    from perank.backends.layer_heads import HeadsConfig, save_layer_heads
    from perank.ranking.decoder_pair_inputs import DEFAULT_PROMPT

    model, tokenizer = fresh_model(llm)
    yes = tokenizer("Yes", add_special_tokens=False)["input_ids"][-1]
    row = model.adapter.get_base_model().get_output_embeddings().weight[yes]
    assert all(torch.equal(head.weight[0], row) for head in model.scorer.heads)
    config = HeadsConfig(base=str(llm), start_layer=2, num_hidden_layers=3, prompt=DEFAULT_PROMPT)
    save_layer_heads(
        tmp_path / "untrained", adapter=model.adapter, heads=model.scorer, tokenizer=tokenizer, config=config
    )
    untrained = Reranker("llm-layerwise", model_path=str(tmp_path / "untrained"), device="cpu").compute_score(PAIRS)
    base = Reranker("llm-yes-no", model_path=str(llm), device="cpu").compute_score(PAIRS)
    assert max(abs(a - b) for a, b in zip(untrained, base)) < 1e-5


# ------------------------------------------------------------------------------------------------ training runs


@pytest.mark.slow
def test_training_lowers_the_loss_and_the_folder_ranks_as_trained(tmp_path: Path, llm: Path) -> None:
    """The same group at every step (1 positive + both negatives): the loss falls; the saved small folder loads in
    the reranker, ranks the positive first, keeps the published cutoff semantics, and scores every pair as the
    trained model does (each layer's head)."""
    row = {"query": QUERY, "pos": [POSITIVE], "neg": NEGATIVES}
    data = write_groups(tmp_path / "train.jsonl", [row, row])
    out = tmp_path / "out"
    assert train_main(flags(llm, data, out, "--max_steps", "6", "--save_steps", "6")) == 0

    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    steps = [line for line in history if "loss" in line]
    losses = [line["loss"] for line in steps]
    assert len(losses) == 6 and all(math.isfinite(x) for x in losses) and losses[-1] < 0.5 * losses[0], losses
    assert all({"loss_last", "loss_self_distill", "step_seconds"} <= set(line) for line in steps)
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "layer_heads.safetensors"} <= names
    assert {"layer_heads_config.json", "tokenizer.json"} <= names and "model.safetensors" not in names
    config = json.loads((out / "layer_heads_config.json").read_text())
    assert config["start_layer"] == 2 and config["num_hidden_layers"] == 3 and config["base"] == str(llm)
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 32 and sorted(adapter["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]

    reranker = Reranker("llm-layerwise", model_path=str(out), device="cpu")
    assert reranker.rank(QUERY, [NEGATIVES[1], POSITIVE, NEGATIVES[0]]).candidates[0].text == POSITIVE
    family = reranker.family
    assert (family.start_layer, family.num_layers, family.cutoff_layer) == (2, 3, 3)
    by_layer = family.compute_score(PAIRS, cutoff_layers=[3, 1, 2])  # sorted; layer 1 has no head: dropped
    model, tokenizer = trained_model(llm, out / "checkpoint-6")
    trained = model_scores(model, tokenizer, PAIRS)
    assert trained.shape == (len(PAIRS), 2)
    for k, layer_scores in enumerate(by_layer):
        assert max(abs(a - float(b)) for a, b in zip(layer_scores, trained[:, k])) < 1e-5
    second = Reranker("llm-layerwise", model_path=str(out), device="cpu", cutoff_layer=2)
    assert second.compute_score(PAIRS) == pytest.approx(by_layer[0], abs=1e-6)
    with pytest.raises(InputError, match="cutoff_layer 1: must be between 2 and 3"):
        Reranker("llm-layerwise", model_path=str(out), device="cpu", cutoff_layer=1)


@pytest.mark.slow
def test_distilling_a_teacher_replaces_the_self_distillation(tmp_path: Path, llm: Path) -> None:
    row = {"query": QUERY, "pos": [POSITIVE], "neg": NEGATIVES, "pos_scores": [0.6], "neg_scores": [0.2, 0.3]}
    data = write_groups(tmp_path / "train.jsonl", [row, row])
    out = tmp_path / "out"
    extra = ("--max_steps", "1", "--distill_weight", "1", "--teacher_temperature", "0.05", "--save_strategy", "no")
    assert train_main(flags(llm, data, out, *extra)) == 0
    (line,) = [e for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    assert "loss_last" in line and "loss_self_distill" not in line and line["loss"] > line["loss_last"]


@pytest.mark.slow
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path: Path, llm: Path, caplog) -> None:
    """Stopped at step 2 and resumed to 4 (the resumed command asks for another first layer: the checkpoint's
    wins, with a warning), the heads and the adapter are those of a run of 4 steps."""
    from safetensors.torch import load_file

    rows = [{"query": f"{QUERY} {i}", "pos": [POSITIVE], "neg": NEGATIVES} for i in range(4)]
    data = write_groups(tmp_path / "train.jsonl", rows)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert train_main(flags(llm, data, whole, "--max_steps", "4", "--save_steps", "2")) == 0
    assert train_main(flags(llm, data, resumed, "--max_steps", "2", "--save_steps", "2")) == 0
    again = flags(llm, data, resumed, "--max_steps", "4", "--save_steps", "2")
    again[again.index("--start_layer") + 1] = "1"
    assert train_main(again) == 0
    assert "--start_layer 1: the checkpoint" in caplog.text
    assert json.loads((resumed / "trainer_state.json").read_text())["global_step"] == 4
    for name in ("adapter_model.safetensors", "layer_heads.safetensors"):
        a, b = (load_file(d / name) for d in (whole, resumed))
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), name


# ------------------------------------------------------------------------------------------------ refusals


def test_bad_flags_are_refused_in_one_line(tmp_path: Path, llm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_groups(tmp_path / "ok.jsonl", [{"query": "q", "pos": ["p"], "neg": ["n"]}])
    out = tmp_path / "out"
    for extra, message in (
        (("--lora_enable", "False"), "--lora_enable False: llm-layerwise trains LoRA adapters"),
        (("--start_layer", "0"), "--start_layer 0: must be at least 1"),
        (("--start_layer", "4"), "--start_layer 4: must be between 1 and the model's 3 layers"),
        (("--prompt", " "), "--prompt: empty"),
        (("--group_size", "1"), "--group_size 1"),
        (("--distill_weight", "1"), "has no teacher scores"),
        (("--gradient_checkpointing",), "--gradient_checkpointing: not supported"),
    ):
        argv = flags(llm, data, out, "--max_steps", "1", *extra)
        if extra[0] == "--start_layer":
            argv = argv[:4] + argv[6:]  # the flag given once, last
        assert train_main(argv) == 2, extra
        last = capsys.readouterr().err.strip().splitlines()[-1]  # the error, the whole of it on this line
        assert last.startswith("error: ") and message in last, (extra, last)
    argv = flags(llm, tmp_path / "missing.jsonl", out, "--max_steps", "1")
    assert train_main(argv) == 2 and "missing.jsonl" in capsys.readouterr().err
    assert not out.exists()


def test_a_broken_folder_is_named(tmp_path: Path, llm: Path) -> None:
    from perank.backends.layer_heads import HEADS_CONFIG, HeadsConfig, save_layer_heads
    from perank.ranking.decoder_pair_inputs import DEFAULT_PROMPT

    model, tokenizer = fresh_model(llm)
    folder = tmp_path / "saved"
    config = HeadsConfig(base=str(llm), start_layer=2, num_hidden_layers=3, prompt="Is B an answer to A?")
    save_layer_heads(folder, adapter=model.adapter, heads=model.scorer, tokenizer=tokenizer, config=config)
    loaded = Reranker("llm-layerwise", model_path=str(folder), device="cpu").family
    assert loaded.prompt == "Is B an answer to A?"  # the trained prompt is the default
    assert Reranker("llm-layerwise", model_path=str(folder), device="cpu", prompt=DEFAULT_PROMPT).family.prompt == (
        DEFAULT_PROMPT
    )

    def broken(**changes: object) -> None:
        (folder / HEADS_CONFIG).write_text(json.dumps({**config.to_json(), **changes}))

    broken(num_hidden_layers=4)
    with pytest.raises(InputError, match="num_hidden_layers 4, but the base has 3 layers"):
        Reranker("llm-layerwise", model_path=str(folder), device="cpu")
    broken(start_layer=0)
    with pytest.raises(InputError, match="start_layer 0 and num_hidden_layers 3"):
        Reranker("llm-layerwise", model_path=str(folder), device="cpu")
    broken(start_layer=1)
    with pytest.raises(InputError, match=r"keys do not match layers 1..3 \(heads.1.weight\)"):
        Reranker("llm-layerwise", model_path=str(folder), device="cpu")
    broken()
    (folder / "layer_heads.safetensors").unlink()
    with pytest.raises(InputError, match="layer_heads.safetensors: missing"):
        Reranker("llm-layerwise", model_path=str(folder), device="cpu")
    (folder / "adapter_config.json").unlink()
    with pytest.raises(InputError, match="but no adapter_config.json"):
        Reranker("llm-layerwise", model_path=str(folder), device="cpu")


def test_the_lm_must_have_a_llama_style_decoder() -> None:
    from torch import nn

    from perank.backends.layer_heads import LayerHeads

    with pytest.raises(InputError, match="Linear: layer heads need a decoder with a 'layers' list"):
        LayerHeads(nn.Linear(2, 2), nn.ModuleList(), 1)


# ------------------------------------------------------------------------------------------------ the recipe


def test_the_recipe_command_parses(tmp_path: Path, recipe_arguments) -> None:
    """recipes/llm_layerwise/train_small.sh's flags are the runner's and valid: SmolLM2 with heads from layer 8,
    whole teacher lists of 16 distilled at teacher temperature 0.05, a constant learning rate after warmup."""
    data = write_groups(tmp_path / "pairs.jsonl", [{"query": "q", "pos": ["p"], "neg": ["n"]}])
    args = recipe_arguments("llm-layerwise", data, tmp_path / "out")
    assert args.model.model_name_or_path == "smollm2" and args.model.start_layer == 8 and args.model.lora_enable
    assert args.data.group_size == 16 and (args.data.query_max_len, args.data.passage_max_len) == (32, 128)
    assert args.training.distill_weight == 1.0 and args.training.teacher_temperature == 0.05
    assert args.training.lr_scheduler_type == "constant_with_warmup" and args.training.max_steps == 5


def test_equal_heads_add_no_self_distillation() -> None:
    """The self-distillation target is the last head's softmax: equal heads add nothing."""
    logits = torch.randn(3, 4, 1).repeat(1, 1, 3)
    loss, parts = layered_group_loss(logits)
    assert parts["loss_self_distill"].item() == pytest.approx(0.0, abs=1e-6)
    expected = 3 * F.cross_entropy(logits[..., 0], torch.zeros(3, dtype=torch.long))
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
