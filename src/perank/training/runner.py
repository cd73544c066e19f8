"""One training path for every family: an abstract runner (shaped like FlagEmbedding's fine-tune runner) and
the registry that ``src/train.py --family NAME`` looks runners up in.

:meth:`TrainingRunner.run` owns what is the same for every family, in this order: parse the command line
(or a single ``.json`` file) into the family's dataclasses, let the family validate them, downgrade GPU-only
settings on CPU (:mod:`perank.training.hardware`), find the checkpoint to resume from and let the family
adopt its settings, then build the model, the dataset and the Trainer through the family's hooks, train,
and save the trainer state and the model. A family implements only the hooks (see docs/training.md,
"Adding a training runner").

A runner class names itself (``family = "name"``) and its family's manifest lists it (``RunnerEntry("name",
"package.module:Class")``, see :mod:`perank.ranking.family`); runners are found as rerankers are, in the one
catalogue of built-in and installed families (:mod:`perank.ranking.catalogue`), and a runner's module is imported
only when that runner is asked for: looking up one runner imports no other family's training code.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from perank.ranking.catalogue import catalogue
from perank.ranking.family import load_target
from perank.ranking.options import suggest
from perank.training.hardware import downgrade_for_cpu
from perank.types import InputError

logger = logging.getLogger("perank.train")

#: the runner ``src/train.py`` runs without ``--family``: the paper's
DEFAULT_FAMILY = "pe-rank"


@dataclass
class RunArguments:
    """The three parsed dataclasses of one run (model, data, training), passed to every hook."""

    model: Any
    data: Any
    training: Any


def complete_checkpoint(folder: Path) -> bool:
    """Whether a ``checkpoint-*`` folder was written to the end: the Trainer writes ``trainer_state.json`` after
    the weights, optimizer and RNG state, so a process killed while saving leaves a folder without a readable
    one, and resuming from it would fail (or worse)."""
    try:
        json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def find_resume_checkpoint(training_args: Any) -> str | None:
    """The checkpoint to resume from: the explicit flag, else the last complete ``checkpoint-*`` in output_dir
    (an incomplete one, left by a crash while it was being written, is skipped with a warning)."""
    explicit = training_args.resume_from_checkpoint
    if explicit:
        if not Path(explicit).is_dir():
            raise InputError(f"--resume_from_checkpoint {explicit}: no such checkpoint folder")
        return str(explicit)
    out = Path(training_args.output_dir)
    if not out.is_dir() or training_args.overwrite_output_dir:
        return None
    steps = sorted(
        (int(p.name.split("-", 1)[1]), p)
        for p in out.glob("checkpoint-*")
        if p.is_dir() and p.name.split("-", 1)[1].isdigit()
    )
    for _, folder in reversed(steps):
        if complete_checkpoint(folder):
            logger.info("resuming from %s (pass --overwrite_output_dir to start afresh)", folder)
            return str(folder)
        logger.warning("%s: incomplete (no readable trainer_state.json; a crash while saving): skipped", folder)
    return None


class TrainingRunner(ABC):
    """A family's training: the hooks below, called in order by :meth:`run`.

    ``argument_classes()`` returns the (model, data, training) dataclasses; the training one must subclass
    :class:`perank.training.arguments.TrainingArguments` (it carries the CPU downgrade and the legacy flags
    that :func:`find_resume_checkpoint` reads). Bad user input raises :class:`~perank.types.InputError`.
    """

    #: the runner's own name (``--family NAME``), the one its family's manifest lists it under (aliases aside)
    family: ClassVar[str] = ""

    @abstractmethod
    def argument_classes(self) -> tuple[type[Any], type[Any], type[Any]]:
        """The model, data and training argument dataclasses, in that order (for ``HfArgumentParser``)."""

    def validate(self, args: RunArguments) -> None:
        """Reject option values the family cannot train with, before anything is loaded (default: none)."""
        return None

    def restore_settings(self, args: RunArguments, checkpoint: str) -> None:
        """Adopt settings stored in the checkpoint being resumed, so its weights fit (default: none)."""
        return None

    @abstractmethod
    def build_model(self, args: RunArguments) -> Any:
        """The ``nn.Module`` the Trainer trains (its ``forward(**batch)`` returns ``{"loss": ...}``)."""

    @abstractmethod
    def build_dataset(self, args: RunArguments, model: Any) -> tuple[Any, Any]:
        """``(dataset, collator)``, every row validated here, before any training step."""

    @abstractmethod
    def build_trainer(self, args: RunArguments, model: Any, dataset: Any, collator: Any) -> Any:
        """The ``transformers.Trainer`` (or subclass) that trains and saves ``model``."""

    def parse(self, argv: Sequence[str]) -> RunArguments:
        """Command-line flags, or one ``.json`` file of them, into the family's dataclasses."""
        from transformers import HfArgumentParser

        parser = HfArgumentParser(self.argument_classes())
        argv = list(argv)
        if len(argv) == 1 and argv[0].endswith(".json"):
            path = Path(argv[0])
            if not path.is_file():
                raise InputError(f"{path}: arguments file not found")
            try:
                parsed = parser.parse_dict(json.loads(path.read_text(encoding="utf-8-sig")))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from exc
            return RunArguments(*parsed)
        *parsed, rest = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
        if rest:
            raise InputError(f"unknown argument(s) for --family {self.family}: {' '.join(rest)}")
        return RunArguments(*parsed)

    def run(self, argv: Sequence[str]) -> None:
        """Parse, validate, downgrade on CPU, resume, build, train, save (InputError for bad input)."""
        args = self.parse(argv)
        self.validate(args)
        downgrade_for_cpu(args.training, args.model)
        checkpoint = find_resume_checkpoint(args.training)
        if checkpoint:
            self.restore_settings(args, checkpoint)
        model = self.build_model(args)
        dataset, collator = self.build_dataset(args, model)
        trainer = self.build_trainer(args, model, dataset, collator)
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        logger.info(
            "%d training rows; %.2fM trainable parameters; world size %d",
            len(dataset),
            n_train / 1e6,
            args.training.world_size,
        )
        trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_state()
        trainer.save_model(args.training.output_dir)
        leave_process_group()


def leave_process_group() -> None:
    """Wait for every rank, then tear the process group down before the interpreter exits.

    Left to interpreter shutdown, gloo's worker threads can be destroyed while still joinable, and a rank dies
    with SIGABRT ("terminate called without an active exception") after its work is saved: the launcher then
    reports a failed run. A no-op for a single process.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def available_runners() -> list[str]:
    """Every runner name of every known family, aliases included (no training code is imported to say so)."""
    return sorted(catalogue().runners)


def get_runner_class(name: str) -> type[TrainingRunner]:
    """The runner class for ``--family name``, its module imported now (and no other family's); an unknown name
    lists the known ones. A manifest whose class is no runner, or names itself otherwise, is an error naming both."""
    found = catalogue().runners.get(name)
    if found is None:
        known = available_runners()
        raise InputError(
            f"--family {name!r}: no training runner by that name{suggest(name, known)}; known: {', '.join(known)}"
        )
    family, entry = found
    cls = load_target(entry.target)
    if not issubclass(cls, TrainingRunner):
        raise TypeError(f"family {family.name!r}: runner {entry.name!r} ({entry.target}) is not a TrainingRunner")
    if cls.family != entry.name:
        raise ValueError(
            f"family {family.name!r}: the manifest names {cls.__qualname__} {entry.name!r}, the class calls itself "
            f"{cls.family!r}"
        )
    return cls


def get_runner(name: str) -> TrainingRunner:
    """A fresh runner for ``--family name`` (see :func:`get_runner_class`)."""
    return get_runner_class(name)()
