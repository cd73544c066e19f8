"""The shared training path: ``--family`` parsing, the runner registry, the one CPU downgrade, resuming, and
the order in which :meth:`TrainingRunner.run` calls a family's hooks (on a fake family: no model is loaded)."""

from __future__ import annotations

import json
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from helpers.paths import REPO
from perank.cli.train import main, split_family
from perank.families.pe_rank.training.runner import PERankRunner
from perank.ranking.family import Family, RunnerEntry
from perank.training.arguments import TrainingArguments
from perank.training.hardware import downgrade_for_cpu
from perank.training.runner import (
    DEFAULT_FAMILY,
    RunArguments,
    TrainingRunner,
    available_runners,
    find_resume_checkpoint,
    get_runner,
)
from perank.types import InputError

# ------------------------------------------------------------------------------------------------ --family


@pytest.mark.parametrize(
    ("argv", "family", "rest"),
    [
        (["--data_path", "x"], "pe-rank", ["--data_path", "x"]),
        (["--data_path", "x", "--family", "other", "--bf16"], "other", ["--data_path", "x", "--bf16"]),
        (["--family=other", "--bf16"], "other", ["--bf16"]),
        (["--bf16", "--family", "other"], "other", ["--bf16"]),
        (["--family", "pe-rank", "--family=pe-rank"], "pe-rank", []),
    ],
)
def test_family_is_taken_out_anywhere(argv: list[str], family: str, rest: list[str]) -> None:
    assert split_family(argv) == (family, rest)


@pytest.mark.parametrize("argv", [["--family"], ["--family", "--bf16"], ["--family", "a", "--family", "b"]])
def test_family_flag_misuse_is_an_error(argv: list[str]) -> None:
    with pytest.raises(InputError, match="--family"):
        split_family(argv)


def test_default_family_is_pe_rank() -> None:
    assert DEFAULT_FAMILY == "pe-rank"
    runner = get_runner(DEFAULT_FAMILY)
    assert isinstance(runner, PERankRunner) and runner.family == "pe-rank"
    assert "pe-rank" in available_runners()


def test_unknown_family_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError, match=r"'bogus'.*known: .*pe-rank"):
        get_runner("bogus")
    assert main(["--family", "bogus", "--output_dir", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --family 'bogus'") and "pe-rank" in err


def test_the_dear_family_trains_by_its_own_name_too() -> None:
    """DeAR's runner is ``listwise-sft`` (its published name) and ``dear`` (its family's)."""
    assert {"dear", "listwise-sft"} <= set(available_runners())
    assert type(get_runner("dear")) is type(get_runner("listwise-sft")) and get_runner("dear").family == "listwise-sft"


def test_a_runner_name_cannot_be_taken_twice(install_family) -> None:
    class Other(PERankRunner):
        family = "other"

    with pytest.raises(ValueError, match="training runner name 'pe-rank' is claimed by families 'pe-rank' and 'x'"):
        install_family(Family("x", runners=(RunnerEntry("pe-rank", Other),)))
        available_runners()


def test_a_runner_must_call_itself_what_its_manifest_calls_it(install_family) -> None:
    class Other(PERankRunner):
        family = "other"

    install_family(Family("x", runners=(RunnerEntry("another", Other),)))
    with pytest.raises(ValueError, match="the manifest names .*Other 'another', the class calls itself 'other'"):
        get_runner("another")
    assert type(get_runner("pe-rank")) is PERankRunner


def test_unknown_flag_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--output_dir", str(tmp_path), "--use_cpu", "--no_such_flag", "1"]) == 2
    assert "unknown argument(s) for --family pe-rank: --no_such_flag 1" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ CPU downgrade


def _settings(**kw: Any) -> tuple[SimpleNamespace, SimpleNamespace]:
    training = SimpleNamespace(use_cpu=kw.get("use_cpu", True), bf16=True, fp16=False, tf32=True)
    return training, SimpleNamespace(attn_implementation="flash_attention_2")


def test_cpu_downgrade_is_loud(caplog: pytest.LogCaptureFixture) -> None:
    training, model = _settings()
    with caplog.at_level(logging.WARNING, logger="perank.train"):
        downgrade_for_cpu(training, model)
    assert (training.bf16, training.fp16, training.tf32, model.attn_implementation) == (False, False, None, "sdpa")
    assert len(caplog.records) == 3
    caplog.clear()
    downgrade_for_cpu(training, model)  # idempotent: nothing left to downgrade, nothing said twice
    assert not caplog.records


def test_no_downgrade_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    training, model = _settings(use_cpu=False)
    downgrade_for_cpu(training, model)
    assert (training.bf16, training.tf32, model.attn_implementation) == (True, True, "flash_attention_2")


def test_training_arguments_downgrade_before_transformers_validates(tmp_path: Path) -> None:
    # transformers refuses bf16/tf32 without a GPU; the shared TrainingArguments downgrades them first
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, bf16=True, tf32=True, evaluation_strategy="no")
    assert (args.bf16, args.tf32, args.eval_strategy) == (False, None, "no")


def test_legacy_warmup_ratio_becomes_a_fractional_warmup_steps(tmp_path: Path) -> None:
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, warmup_ratio=0.03)
    assert args.warmup_steps == 0.03
    with pytest.raises(InputError, match="pass one"):
        TrainingArguments(output_dir=str(tmp_path), use_cpu=True, warmup_ratio=0.03, warmup_steps=10)
    with pytest.raises(InputError, match="--warmup_ratio 1.5"):
        TrainingArguments(output_dir=str(tmp_path), use_cpu=True, warmup_ratio=1.5)


#: the original commands stay in scripts/ (where the PE-Rank repository has them); the small model's is a recipe
SCRIPTS = {
    "train_s1.sh": REPO / "scripts" / "train_s1.sh",
    "train_s2.sh": REPO / "scripts" / "train_s2.sh",
    "train_small.sh": REPO / "recipes" / "pe_rank" / "train_small.sh",
}
# values for the shell variables in the scripts' commands, by the flag they follow (anything else: a path)
SHELL_VALUES = {"--max_steps": "5", "--lr_scheduler_type": "cosine"}


def _script_commands(name: str) -> list[list[str]]:
    """The flags each ``src/train.py`` command of a training script passes, shell variables replaced by
    plausible values (a command ends at ``"$@"`` or at its first line without a continuation backslash)."""
    commands = []
    for chunk in SCRIPTS[name].read_text().split("src/train.py")[1:]:
        lines = []
        for line in chunk.split('"$@"', 1)[0].splitlines():
            lines.append(line.rstrip().removesuffix("\\"))
            if not line.rstrip().endswith("\\"):
                break
        argv = shlex.split(" ".join(lines))
        argv = [SHELL_VALUES.get(argv[i - 1], "x") if "$" in a else a for i, a in enumerate(argv)]
        # the scripts cd to the repository root first; the DeepSpeed config is read while parsing
        commands.append([str(REPO / a) if argv[i - 1] == "--deepspeed" else a for i, a in enumerate(argv)])
    return commands


@pytest.mark.parametrize("script", ["train_s1.sh", "train_s2.sh", "train_small.sh"])
def test_the_shipped_commands_parse_unchanged(script: str) -> None:
    commands = _script_commands(script)
    assert len(commands) == (2 if script == "train_small.sh" else 1)  # train_small.sh: stage 2, then phase e
    for command in commands:
        family, rest = split_family(command)
        runner = get_runner(family)
        args = runner.parse(rest)
        runner.validate(args)
        downgrade_for_cpu(args.training, args.model)  # what run() does next; harmless on a GPU
        assert family == "pe-rank" and args.model.model_type in ("causal_lm", "rank_lm")
        if script != "train_small.sh":  # the original commands: DeepSpeed, bf16, flash-attention 2, warmup ratio
            assert args.training.deepspeed and args.training.warmup_steps == 0.03
    if script == "train_small.sh":
        assert args.model.relevance_feature == "cosine" and args.model.init_from == "x"


# ------------------------------------------------------------------------------------------------ resume


def test_find_resume_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = SimpleNamespace(resume_from_checkpoint=None, output_dir=str(out), overwrite_output_dir=False)
    assert find_resume_checkpoint(args) is None
    for step in (2, 10):  # complete checkpoints: the Trainer writes trainer_state.json last
        (out / f"checkpoint-{step}").mkdir(parents=True)
        (out / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert find_resume_checkpoint(args) == str(out / "checkpoint-10")
    args.overwrite_output_dir = True
    assert find_resume_checkpoint(args) is None
    args.resume_from_checkpoint = str(tmp_path / "missing")
    with pytest.raises(InputError, match="--resume_from_checkpoint"):
        find_resume_checkpoint(args)


# ------------------------------------------------------------------------------------- run() on a fake family


@dataclass
class FakeModelArguments:
    attn_implementation: str | None = None
    width: int = 3


@dataclass
class FakeDataArguments:
    rows: int = 5


class FakeTrainer:
    def __init__(self, calls: list[Any]) -> None:
        self.calls = calls

    def train(self, resume_from_checkpoint: str | None = None) -> None:
        self.calls.append(("train", resume_from_checkpoint))

    def save_state(self) -> None:
        self.calls.append(("save_state",))

    def save_model(self, output_dir: str) -> None:
        self.calls.append(("save_model", output_dir))


class FakeRunner(TrainingRunner):
    """Records the hooks it is called with; never registered, so the registry stays as shipped."""

    family = "fake"

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def argument_classes(self) -> tuple[type[Any], type[Any], type[Any]]:
        return FakeModelArguments, FakeDataArguments, TrainingArguments

    def validate(self, args: RunArguments) -> None:
        if args.model.width < 1:
            raise InputError("--width must be positive")
        self.calls.append(("validate", args.training.bf16))

    def restore_settings(self, args: RunArguments, checkpoint: str) -> None:
        self.calls.append(("restore", Path(checkpoint).name))

    def build_model(self, args: RunArguments) -> Any:
        self.calls.append(("model", args.model.attn_implementation))
        return torch.nn.Linear(args.model.width, 1)

    def build_dataset(self, args: RunArguments, model: Any) -> tuple[Any, Any]:
        self.calls.append(("dataset",))
        return list(range(args.data.rows)), None

    def build_trainer(self, args: RunArguments, model: Any, dataset: Any, collator: Any) -> Any:
        self.calls.append(("trainer", len(dataset)))
        return FakeTrainer(self.calls)


def test_run_calls_the_hooks_in_order(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "checkpoint-4").mkdir(parents=True)
    (out / "checkpoint-4" / "trainer_state.json").write_text("{}")
    runner = FakeRunner()
    flags = ["--output_dir", str(out), "--use_cpu", "--bf16", "--attn_implementation", "flash_attention_2"]
    runner.run(flags + ["--rows", "2"])
    assert runner.calls == [
        ("validate", False),
        ("restore", "checkpoint-4"),
        ("model", "sdpa"),
        ("dataset",),
        ("trainer", 2),
        ("train", str(out / "checkpoint-4")),
        ("save_state",),
        ("save_model", str(out)),
    ]
    with pytest.raises(InputError, match="--width"):
        FakeRunner().run(flags + ["--width", "0"])


def test_run_reads_a_json_file_of_flags(tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"output_dir": str(tmp_path / "o"), "use_cpu": True, "rows": 1}))
    runner = FakeRunner()
    runner.run([str(config)])
    assert ("trainer", 1) in runner.calls and ("train", None) in runner.calls
    with pytest.raises(InputError, match="missing.json: arguments file not found"):
        FakeRunner().run([str(tmp_path / "missing.json")])


def test_an_incomplete_checkpoint_left_by_a_crash_is_skipped(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from perank.training.runner import find_resume_checkpoint

    for step, state in ((2, '{"global_step": 2}'), (4, '{"global_step": 4}'), (6, None), (8, '{"glob')):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    args = SimpleNamespace(resume_from_checkpoint=None, output_dir=str(tmp_path), overwrite_output_dir=False)
    assert find_resume_checkpoint(args) == str(tmp_path / "checkpoint-4")
