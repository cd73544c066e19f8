"""What every runner that trains a pointwise scorer on query groups shares (``cross-encoder``, ``llm-yes-no``,
``llm-layerwise``).

Such a family reads FlagEmbedding's JSONL (:mod:`perank.training.pairs`), turns each batch of groups into
``group_size`` consecutive (query, passage) rows, scores every row with its model, and trains on the group
cross-entropy with the positive first (:func:`perank.training.group_loss.group_loss`, FlagEmbedding's
``AbsRerankerModel``), optionally plus a KL to the rows' teacher scores (``--distill_weight``,
``--distill_temperature``, ``--teacher_temperature``). Only the model, the way a row is tokenised and the way a
row is scored differ, so a family writes only those (and any checks of its own) on :class:`PairGroupRunner`; the
data and distillation flags, their validation, the dataset, the teacher scores of a batch and the Trainer are
written once here, so the families cannot drift apart in what a group, a budget or the loss means.

A family whose model gives several scores per row (``llm-layerwise``: one per layer head) returns them as
``[rows, heads]``, the last head last; the loss is then :func:`perank.training.group_loss.layered_group_loss`
(every head trained, FlagEmbedding's layerwise loss). A family that saves its own layout names its Trainer
subclass (:attr:`PairGroupRunner.trainer_class`, :meth:`PairGroupRunner.trainer_options`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from perank.training.arguments import TrainingArguments
from perank.training.group_loss import group_loss, layered_group_loss
from perank.training.logged_trainer import LoggedTrainer
from perank.training.pairs import PairGroup, PairGroupDataset, read_pair_groups
from perank.training.runner import RunArguments, TrainingRunner
from perank.types import InputError

#: ``(model, batch) -> (scores, what compute_loss(return_outputs=True) returns; None: the grouped scores)``; the
#: scores are one per row (``[rows]`` or ``[rows, 1]``) or one per row and head (``[rows, heads]``, the last head last)
PairScorer = Callable[[Any, dict[str, Any]], tuple[Tensor, Any]]


@dataclass
class PairGroupDataArguments:
    """The query groups and how they are cut; a family redefines a field only to say what it means there."""

    data_path: str = field(default="", metadata={"help": "JSONL of {query, pos, neg}"})
    group_size: int = field(default=8, metadata={"help": "passages per group: 1 positive + group_size-1 negatives"})
    query_max_len: int = field(default=32, metadata={"help": "query token budget (FlagEmbedding's default)"})
    passage_max_len: int = field(default=128, metadata={"help": "passage token budget (FlagEmbedding's default)"})


@dataclass
class PairGroupTrainingArguments(TrainingArguments):
    """The shared training flags and the distillation term; the batch carries group rows (and teacher scores)
    the model's forward does not name, so the Trainer must not drop "unused" columns.

    With ``--distill_weight w`` and teacher scores in the data, ``w * KL(softmax(teacher/T_t) ||
    softmax(scores/T))`` over each group is added to the group cross-entropy (``--distill_temperature T``,
    ``--teacher_temperature T_t``, which is T unless given; FlagEmbedding's own distillation is the soft
    cross-entropy at T = T_t = 1, which has the same gradient). Distilling a dense teacher's cosines wants
    ``T_t`` near the scale that encoder was trained at (0.05 for MiniLM): at 1 their softmax is nearly uniform.
    """

    distill_weight: float = field(default=0.0, metadata={"help": "weight of the KL to the teacher scores (0: off)"})
    distill_temperature: float = field(default=1.0, metadata={"help": "softmax temperature of the model's scores"})
    teacher_temperature: float | None = field(
        default=None, metadata={"help": "softmax temperature of the teacher scores (default: --distill_temperature)"}
    )

    def __post_init__(self) -> None:
        self.remove_unused_columns = False
        super().__post_init__()


@dataclass
class WithTeacherScores:
    """A family's collator, plus the batch's ``teacher_scores`` (``[groups, group_size]``) when distilling."""

    collator: Callable[[list[dict[str, Any]]], dict[str, Tensor]]
    distilling: bool

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Tensor]:
        batch = self.collator(features)
        if self.distilling:
            batch["teacher_scores"] = torch.tensor([f["teacher"] for f in features], dtype=torch.float32)
        return batch


def group_pairs(features: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The (query, passage) rows of a batch of :class:`PairGroupDataset` items, group by group: the order
    :class:`GroupTrainer` relies on when it views the scores as ``[groups, group_size]`` (positive first)."""
    return [(f["query"], p) for f in features for p in f["passages"]]


class GroupTrainer(LoggedTrainer):
    """A Trainer whose ``compute_loss`` is :func:`group_loss` over the groups of each batch.

    ``scorer`` gives one score per row; a batch's ``teacher_scores`` (when its collator adds them) are
    distilled with ``distill_weight`` at ``temperature`` (the teacher's at ``teacher_temperature``, the same
    when None; weight 0: the plain group cross-entropy). A scorer that gives several heads' scores per row
    (``[rows, heads]``) trains on :func:`layered_group_loss`, whose parts (the last head's loss, the heads'
    self-distillation) are logged beside the loss.
    """

    loss_parts = ("loss_last", "loss_self_distill")

    def __init__(
        self,
        *args: Any,
        group_size: int,
        scorer: PairScorer,
        distill_weight: float = 0.0,
        temperature: float = 1.0,
        teacher_temperature: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.group_size = group_size
        self.scorer = scorer
        self.distill_weight = distill_weight
        self.temperature = temperature
        self.teacher_temperature = teacher_temperature

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        teacher = inputs.pop("teacher_scores", None)
        scores, outputs = self.scorer(model, inputs)
        if scores.dim() == 2 and scores.shape[1] > 1:  # several heads per row
            logits = scores.view(-1, self.group_size, scores.shape[1]).float()
            loss, parts = layered_group_loss(
                logits, teacher, self.distill_weight, self.temperature, self.teacher_temperature
            )
            for name, part in parts.items():
                self.record(name, part)
        else:
            logits = scores.view(-1, self.group_size).float()
            loss = group_loss(logits, teacher, self.distill_weight, self.temperature, self.teacher_temperature)
        if not return_outputs:
            return loss
        return loss, ({"scores": logits} if outputs is None else outputs)


class PairGroupRunner(TrainingRunner):
    """A :class:`TrainingRunner` for query-group training: the family gives its argument classes, the model and
    tokenizer (``load``), its collator and its row scores; this class validates the shared flags, reads and
    samples the groups and builds the :class:`GroupTrainer`."""

    #: the (model, data, training) dataclasses; data extends :class:`PairGroupDataArguments`, training
    #: :class:`PairGroupTrainingArguments`
    arguments: ClassVar[tuple[type[Any], type[Any], type[Any]]]

    #: where the ``--data_path is required`` message says such a file comes from
    data_source: ClassVar[str] = "perank build-pair-data"

    #: the Trainer built (a family that saves its own layout names its subclass of :class:`GroupTrainer`)
    trainer_class: ClassVar[type[GroupTrainer]] = GroupTrainer

    #: the model's tokenizer, kept from ``load`` (the collator tokenises with it, every save writes it)
    tokenizer: Any

    def argument_classes(self) -> tuple[type[Any], type[Any], type[Any]]:
        return self.arguments

    def validate(self, args: RunArguments) -> None:
        """Data is given, groups hold a negative and the budgets are positive (a family adds its own checks)."""
        data = args.data
        if not data.data_path:
            raise InputError(f"--data_path is required (FlagEmbedding JSONL, e.g. from {self.data_source})")
        if data.group_size < 2:
            raise InputError(f"--group_size {data.group_size}: must be at least 2 (a positive and a negative)")
        if data.query_max_len < 1 or data.passage_max_len < 1:
            raise InputError("--query_max_len and --passage_max_len must be at least 1")
        training = args.training
        if training.distill_weight < 0:
            raise InputError(f"--distill_weight {training.distill_weight}: must be at least 0")
        if training.distill_temperature <= 0:
            raise InputError(f"--distill_temperature {training.distill_temperature}: must be above 0")
        if training.teacher_temperature is not None and training.teacher_temperature <= 0:
            raise InputError(f"--teacher_temperature {training.teacher_temperature}: must be above 0")

    @abstractmethod
    def load(self, args: RunArguments) -> tuple[Any, Any]:
        """The model to train (fp32: mixed precision is the Trainer's) and its tokenizer."""

    def build_model(self, args: RunArguments) -> Any:
        model, self.tokenizer = self.load(args)
        return model

    def check_groups(self, args: RunArguments, groups: list[PairGroup]) -> None:
        """Refuse data the family cannot train on, once every row is read and before sampling: teacher scores
        are required when distilling (all rows have them or none, so the first one tells); a family may add
        its own checks."""
        if args.training.distill_weight > 0 and groups[0].pos_scores is None:
            raise InputError(
                f"--distill_weight {args.training.distill_weight}: {args.data.data_path} has no teacher scores "
                "('pos_scores'/'neg_scores'); build it with a dense or run teacher, or drop --distill_weight"
            )

    @abstractmethod
    def build_collator(self, args: RunArguments) -> Callable[[list[dict[str, Any]]], dict[str, Tensor]]:
        """Items -> a padded batch of :func:`group_pairs` rows (the teacher scores are added here)."""

    @abstractmethod
    def pair_scores(self, model: Any, inputs: dict[str, Any]) -> tuple[Tensor, Any]:
        """One score per row of the batch, and the outputs to return with them (None: the grouped scores)."""

    def build_dataset(self, args: RunArguments, model: Any) -> tuple[Any, Any]:
        """Every group validated (file:line errors), sampled per item and epoch; tokenised by the collator."""
        groups = read_pair_groups(args.data.data_path)
        self.check_groups(args, groups)
        dataset = PairGroupDataset(groups, args.data.group_size, seed=args.training.seed)
        return dataset, WithTeacherScores(self.build_collator(args), args.training.distill_weight > 0)

    def trainer_options(self, args: RunArguments) -> dict[str, Any]:
        """Keyword arguments of the family's :attr:`trainer_class` beyond :class:`GroupTrainer`'s (default: none)."""
        return {}

    def build_trainer(self, args: RunArguments, model: Any, dataset: Any, collator: Any) -> GroupTrainer:
        training = args.training
        return self.trainer_class(
            model=model,
            args=args.training,
            train_dataset=dataset,
            data_collator=collator,
            processing_class=self.tokenizer,
            group_size=args.data.group_size,
            scorer=self.pair_scores,
            distill_weight=training.distill_weight,
            temperature=training.distill_temperature,
            teacher_temperature=training.teacher_temperature,
            **self.trainer_options(args),
        )
