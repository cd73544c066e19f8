"""What the runners that train on teacher-ranked lists share (``e2rank``, ``jina-listwise``).

Both read ``perank build-rank-data`` rows as lists (:mod:`perank.training.ranked_lists`), score a slate of each
list and train on a weighted sum of two listwise losses. The data flags, their checks, the reading of the lists,
and the training flags' column handling are written once here, so the two families cannot drift apart in what
``--data_path`` or ``--slate_size`` means (their Trainers log through :class:`perank.training.logged_trainer.
LoggedTrainer`). A family writes its model, its collator, its losses and its own checks (after
:meth:`RankedListRunner.validate`, with the helpers below).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perank.training.arguments import TrainingArguments
from perank.training.ranked_lists import RankedList, read_ranked_lists, refuse_held_out
from perank.training.runner import RunArguments, TrainingRunner
from perank.types import InputError


@dataclass
class RankedListDataArguments:
    """The teacher lists, the slate scored per list and the held-out queries; a family adds its text or prompt
    settings and redefines a field only to say what it means there."""

    data_path: str = field(default="", metadata={"help": "JSONL rows of perank build-rank-data (teacher rankings)"})
    slate_size: int | None = field(
        default=None,
        metadata={"help": "candidates per list scored: the teacher's top one and a random draw of the others"},
    )
    forbid_qrels: list[str] = field(
        default_factory=list, metadata={"help": "refuse rows whose qid is judged in these qrels (DL19's always)"}
    )
    forbid_topics: list[str] = field(
        default_factory=list, metadata={"help": "refuse rows whose query is one of these topics (DL19's always)"}
    )


@dataclass
class RankedListTrainingArguments(TrainingArguments):
    """The shared training flags; a batch carries list structure (positions, lengths; E2Rank's also three sets of
    tokenised texts) that no forward signature names, so the Trainer must not drop "unused" columns."""

    def __post_init__(self) -> None:
        self.remove_unused_columns = False
        super().__post_init__()


def refuse_adapter_start(model_name_or_path: str, base: str) -> None:
    """InputError when ``--model_name_or_path`` is an adapter folder: the runners train fresh adapters on a
    ``base`` (what the message tells the user to start from instead)."""
    from perank.backends.lm_loading import is_adapter_folder

    if is_adapter_folder(model_name_or_path):
        raise InputError(f"--model_name_or_path {model_name_or_path}: an adapter folder; start from its base {base}")


def check_loss_settings(training: Any, factors: Sequence[str]) -> None:
    """InputError unless the loss weights (the training flags named in ``factors``) are at least 0 each and not
    all 0, and ``--temperature`` (the cosines are divided by it) is positive."""
    values = [getattr(training, name) for name in factors]
    if min(values) < 0 or max(values) == 0:
        raise InputError(f"{' and '.join(f'--{name}' for name in factors)}: at least 0 each, not both 0")
    if not training.temperature > 0:
        raise InputError(f"--temperature {training.temperature}: must be positive")


class RankedListRunner(TrainingRunner):
    """A :class:`TrainingRunner` on teacher-ranked lists: its data dataclass extends
    :class:`RankedListDataArguments`; :meth:`validate` checks the shared flags (a family calls it first and adds
    its own checks) and :meth:`read_lists` reads the rows the family's dataset is drawn from."""

    def validate(self, args: RunArguments) -> None:
        """The rows file is given and exists, and a slate holds a pair to rank."""
        data = args.data
        if not data.data_path:
            raise InputError("--data_path is required (rows of perank build-rank-data: recipes/build_rank_mix.sh)")
        if not Path(data.data_path).is_file():
            raise InputError(f"--data_path {data.data_path}: file not found")
        if data.slate_size is not None and data.slate_size < 2:
            raise InputError(f"--slate_size {data.slate_size}: must be at least 2 (a pair to rank)")

    def read_lists(self, args: RunArguments) -> list[RankedList]:
        """Every row validated (file:line errors), the whole file refused when a query is held out."""
        data = args.data
        lists = read_ranked_lists(data.data_path)
        refuse_held_out(lists, data.data_path, data.forbid_qrels, data.forbid_topics)
        return lists
