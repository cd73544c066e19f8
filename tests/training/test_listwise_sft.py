"""``--family listwise-sft``: rows rendered in a dear prompt with the loss on the answer only, a few LoRA steps on
the tiny LLM whose output loads in ``dear``, bad rows and flags refused up front, and the recipe's flags."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from helpers.paths import REPO
from perank.cli.train import main as train_main
from perank.families.dear.prompts import repo_messages
from perank.families.dear.reranker import DearReranker
from perank.families.dear.training import encode_window
from perank.training.chat import IGNORE_INDEX
from perank.types import Candidate, Query, Request

COMMON = ["--family", "listwise-sft", "--max_steps", "2", "--use_cpu", "--report_to", "none"]
COMMON += ["--per_device_train_batch_size", "2", "--learning_rate", "1e-3", "--logging_steps", "1"]
COMMON += ["--lora_r", "4", "--lora_alpha", "8", "--model_max_length", "1024"]


def answer_tokens(tokenizer, ids: list[int], labels: list[int]) -> str:
    assert all(lab in (IGNORE_INDEX, tok) for tok, lab in zip(ids, labels))
    return tokenizer.decode([lab for lab in labels if lab != IGNORE_INDEX])


def test_only_the_teacher_answer_is_a_target(tiny_model) -> None:
    tok = tiny_model.tokenizer
    passages = ["fleas live for months", "paris is in france", "flea eggs hatch"]
    ids, labels = encode_window(tok, "repo", "how long do fleas live", passages, [2, 0, 1], 1024)
    assert answer_tokens(tok, ids, labels) == "[3] > [1] > [2]<|im_end|>\n"
    prompt = tok.apply_chat_template(
        repo_messages("repo", "how long do fleas live", passages), tokenize=False, add_generation_prompt=True
    )
    first = labels.index(next(lab for lab in labels if lab != IGNORE_INDEX))
    assert tok.decode(ids[:first]) == prompt  # the context is exactly what dear sends at inference
    ids, labels = encode_window(tok, "card", "q", passages, [2, 0, 1], 1024)
    assert answer_tokens(tok, ids, labels) == "[2] > [0] > [1]" + tok.eos_token
    assert tok.decode(ids).startswith("I will provide you with 3 passages, each indicated by a number identifier")
    # too long: passages are cut to fit, never the answer
    long = ["word " * 400] * 3
    ids, labels = encode_window(tok, "repo-cot", "q", long, [1, 2, 0], 600)
    assert len(ids) <= 600 and answer_tokens(tok, ids, labels).startswith("[2] > [3] > [1]")


def test_a_few_steps_save_an_adapter_that_dear_loads(tiny_dirs, tmp_path: Path, rank_row, write_jsonl) -> None:
    data = write_jsonl(tmp_path / "rows.jsonl", [rank_row(4, start=i) for i in range(4)])
    out = tmp_path / "out"
    args = ["--model_name_or_path", str(tiny_dirs.llm), "--data_path", str(data), "--output_dir", str(out)]
    assert (
        train_main(COMMON + args + ["--save_strategy", "steps", "--save_steps", "2", "--max_passage_tokens", "6"]) == 0
    )
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and all(e["loss"] > 0 for e in state["log_history"] if "loss" in e)
    request = Request(
        query=Query(qid="q", text="query about topic 1"),
        candidates=[Candidate(docid=str(i), text=f"passage {i}", score=0.0, rank=i + 1) for i in range(5)],
    )
    from safetensors.torch import load_file

    trained = load_file(str(out / "adapter_model.safetensors"))
    assert any(k.endswith("lora_B.weight") and v.abs().sum() > 0 for k, v in trained.items())  # it learnt
    for folder in (out, out / "checkpoint-2"):
        assert json.loads((folder / "adapter_config.json").read_text())["r"] == 4
        settings = json.loads((folder / "dear_prompt.json").read_text())
        assert settings == {"prompt": "repo", "max_passage_tokens": 6}
        ranker = DearReranker(model_path=str(folder), device="cpu", max_new_tokens=8, window_size=4, step=2)
        assert ranker.prompt == "repo" and ranker.max_passage_tokens == 6  # read as it was trained
        (result,) = ranker.rerank([request])
        assert sorted(c.docid for c in result.candidates) == [str(i) for i in range(5)]
        assert result.stats["windows"] == 2


def test_bad_rows_and_flags_are_refused_up_front(tiny_dirs, tmp_path: Path, capsys, rank_row, write_jsonl) -> None:
    out = tmp_path / "out"
    base = ["--model_name_or_path", str(tiny_dirs.llm), "--output_dir", str(out)]
    bad_ranking = {**rank_row(3), "ranking": [0, 0, 1]}
    no_query = {**rank_row(3), "query": ""}
    short = {**rank_row(3), "extra_texts": ["one"]}
    bad = write_jsonl(tmp_path / "bad.jsonl", [rank_row(3), bad_ranking, no_query, short])
    assert train_main(COMMON + base + ["--data_path", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "3 bad training row(s)" in err and f"{bad}:2: 'ranking' is not a permutation" in err
    assert f"{bad}:3: 'query' must be a non-empty string" in err and f"{bad}:4: 'extra_texts'" in err
    good = write_jsonl(tmp_path / "good.jsonl", [rank_row(3)])
    assert train_main(COMMON + base + ["--data_path", str(good), "--prompt", "rankgpt"]) == 2
    assert "--prompt 'rankgpt': choose one of card, repo, repo-cot" in capsys.readouterr().err
    assert train_main(COMMON + base) == 2
    assert "--data_path is required" in capsys.readouterr().err
    assert train_main(COMMON + base + ["--data_path", str(good), "--model_max_length", "100"]) == 2
    assert f"{good}:1: a window of 3 passages does not fit" in capsys.readouterr().err
    missing = ["--model_name_or_path", str(tmp_path / "no-such-llm"), "--output_dir", str(out)]
    assert train_main(COMMON + missing + ["--data_path", str(good)]) == 2
    assert "no-such-llm" in capsys.readouterr().err
    assert not (out / "adapter_model.safetensors").exists()


def test_the_recipe_command_parses() -> None:
    """recipes/listwise_sft/train_small.sh's src/train.py flags are all known to the runner and valid."""
    from perank.cli.train import split_family
    from perank.training.runner import get_runner

    script = (REPO / "recipes" / "listwise_sft" / "train_small.sh").read_text()
    body = script.split("$PY src/train.py", 1)[1].split('"$@"', 1)[0]
    argv = [
        ("5" if "MAX" in a or "TOTAL" in a else "x") if "$" in a else a for a in shlex.split(body.replace("\\\n", " "))
    ]
    family, rest = split_family(argv)
    runner = get_runner(family)
    args = runner.parse(rest + ["--use_cpu"])
    runner.validate(args)
    assert family == "listwise-sft" and args.data.prompt == "repo" and args.model.model_name_or_path == "smollm2"
    assert (args.model.lora_enable, args.model.lora_r, args.model.lora_alpha) == (True, 16, 32)


@pytest.mark.parametrize("flag", ["--max_passage_tokens", "--lora_r"])
def test_non_positive_budgets_are_refused(flag: str, tiny_dirs, tmp_path: Path, capsys, rank_row, write_jsonl) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [rank_row(3)])
    argv = COMMON + ["--model_name_or_path", str(tiny_dirs.llm), "--output_dir", str(tmp_path / "o")]
    assert train_main(argv + ["--data_path", str(good), flag, "0"]) == 2
    assert "must be at least 1" in capsys.readouterr().err
