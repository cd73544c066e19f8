"""``--family cross-encoder``: FlagEmbedding's encoder-reranker fine-tuning on the shared training path.

Each training example is a query group (:mod:`perank.training.pairs`): one positive and ``group_size - 1``
negatives, every (query, passage) pair scored by the model's one-label head, and the loss is the group
cross-entropy with the positive first (FlagEmbedding's ``AbsRerankerModel``). With ``--distill_weight w`` and
teacher scores in the data, ``w * KL(softmax(teacher/T) || softmax(logits/T))`` over each group is added
(``--distill_temperature T``; FlagEmbedding's own distillation is the soft cross-entropy at T=1, which has the
same gradient). Pairs are tokenised as FlagEmbedding's training data does: query cut to
``query_max_len + passage_max_len//4``, passage to ``passage_max_len + query_max_len//2``, the pair to
``query_max_len + passage_max_len`` (:func:`perank.families.cross_encoder.inputs.encode_pairs`).

The model trained is the ``AutoModelForSequenceClassification`` itself (a plain encoder such as the packaged
``all-minilm-l6-v2`` gets a fresh one-label head), and the loss lives in the Trainer's ``compute_loss``, so
every save (``output_dir`` and each ``checkpoint-*``) is an ordinary Hugging Face folder with the tokenizer
beside it: the ``cross-encoder`` reranker loads it with ``model_path=DIR``, and resuming restores it natively.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from transformers import Trainer

from perank.families.cross_encoder.inputs import PairTemplate, encode_pairs, pad_pairs
from perank.training.arguments import TrainingArguments as BaseTrainingArguments
from perank.training.group_loss import group_loss
from perank.training.runner import RunArguments, TrainingRunner
from perank.types import InputError

logger = logging.getLogger("perank.train")


@dataclass
class ModelArguments:
    """The model to fine-tune: a cross-encoder, or a plain encoder that gets a fresh one-label head."""

    model_name_or_path: str = field(
        default="all-minilm-l6-v2", metadata={"help": "hub id, folder or packaged alias (all-minilm-l6-v2)"}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "run a model's own code from the hub"})


@dataclass
class DataArguments:
    """FlagEmbedding-style query groups and how they are cut."""

    data_path: str = field(default="", metadata={"help": "JSONL of {query, pos, neg[, pos_scores, neg_scores]}"})
    group_size: int = field(default=8, metadata={"help": "passages per group: 1 positive + group_size-1 negatives"})
    query_max_len: int = field(default=32, metadata={"help": "query token budget (FlagEmbedding's default)"})
    passage_max_len: int = field(default=128, metadata={"help": "passage token budget (FlagEmbedding's default)"})


@dataclass
class TrainingArguments(BaseTrainingArguments):
    """Shared training flags plus the distillation term."""

    distill_weight: float = field(default=0.0, metadata={"help": "weight of the KL to the teacher scores (0: off)"})
    distill_temperature: float = field(default=1.0, metadata={"help": "softmax temperature of teacher and model"})

    def __post_init__(self) -> None:
        # our batches carry teacher scores that the model's forward signature does not name
        self.remove_unused_columns = False
        super().__post_init__()


@dataclass
class GroupCollator:
    """Query groups -> padded pairs (``group_size`` consecutive rows per group) and their teacher scores."""

    tokenizer: Any
    template: PairTemplate
    query_max_len: int
    passage_max_len: int
    with_teacher: bool

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Tensor]:
        pairs = [(f["query"], p) for f in features for p in f["passages"]]
        q, p = self.query_max_len, self.passage_max_len
        encoded = encode_pairs(self.tokenizer, self.template, pairs, q + p // 4, p + q // 2, q + p)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        batch = pad_pairs(encoded, self.template, pad_id, self.tokenizer.padding_side)
        if self.with_teacher:
            batch["teacher_scores"] = torch.tensor([f["teacher"] for f in features], dtype=torch.float32)
        return batch


class CrossEncoderTrainer(Trainer):
    """A Trainer whose ``compute_loss`` is :func:`group_loss` over the groups of each batch."""

    # the loss is a per-batch mean: the Trainer divides it by the gradient accumulation steps
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, group_size: int, distill_weight: float, temperature: float, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.group_size = group_size
        self.distill_weight = distill_weight
        self.temperature = temperature

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        teacher = inputs.pop("teacher_scores", None)
        outputs = model(**inputs, return_dict=True)
        logits = outputs.logits.view(-1, self.group_size).float()
        loss = group_loss(logits, teacher, self.distill_weight, self.temperature)
        return (loss, outputs) if return_outputs else loss


def load_for_training(model_args: ModelArguments, seed: int) -> tuple[torch.nn.Module, Any]:
    """The model (fp32; mixed precision is the Trainer's) with a one-label head, and its tokenizer."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, set_seed

    from perank.backends.resolve import resolve_model

    source = resolve_model(model_args.model_name_or_path)
    remote = model_args.trust_remote_code
    config = AutoConfig.from_pretrained(source, trust_remote_code=remote)
    archs = getattr(config, "architectures", None) or []
    if any(a.endswith("ForSequenceClassification") for a in archs) and config.num_labels != 1:
        raise InputError(
            f"--model_name_or_path {model_args.model_name_or_path}: its classification head has "
            f"{config.num_labels} labels; start from a one-label cross-encoder or a plain encoder"
        )
    set_seed(seed)  # the fresh head's initialisation
    model, info = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=1, dtype=torch.float32, trust_remote_code=remote, output_loading_info=True
    )
    if info.get("missing_keys"):
        logger.info("fresh classification head: %s", ", ".join(sorted(info["missing_keys"])))
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=remote)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


class CrossEncoderRunner(TrainingRunner):
    """Group cross-entropy fine-tuning of a cross-encoder (see the module docstring)."""

    family = "cross-encoder"

    def argument_classes(self) -> tuple[type[Any], type[Any], type[Any]]:
        return ModelArguments, DataArguments, TrainingArguments

    def validate(self, args: RunArguments) -> None:
        """Data is given, groups hold a negative, budgets and distillation settings make sense."""
        data, training = args.data, args.training
        if not data.data_path:
            raise InputError("--data_path is required (FlagEmbedding JSONL, e.g. from perank build-pair-data)")
        if data.group_size < 2:
            raise InputError(f"--group_size {data.group_size}: must be at least 2 (a positive and a negative)")
        if data.query_max_len < 1 or data.passage_max_len < 1:
            raise InputError("--query_max_len and --passage_max_len must be at least 1")
        if training.distill_weight < 0:
            raise InputError(f"--distill_weight {training.distill_weight}: must be at least 0")
        if training.distill_temperature <= 0:
            raise InputError(f"--distill_temperature {training.distill_temperature}: must be above 0")

    def build_model(self, args: RunArguments) -> Any:
        model, tokenizer = load_for_training(args.model, args.training.seed)
        self.tokenizer = tokenizer
        return model

    def build_dataset(self, args: RunArguments, model: Any) -> tuple[Any, Any]:
        """Every group validated (file:line errors); teacher scores required when distilling."""
        from perank.training.pairs import PairGroupDataset, read_pair_groups

        groups = read_pair_groups(args.data.data_path)
        distill = args.training.distill_weight > 0
        if distill and groups[0].pos_scores is None:
            raise InputError(
                f"--distill_weight {args.training.distill_weight}: {args.data.data_path} has no teacher scores "
                "('pos_scores'/'neg_scores'); build it with a dense or run teacher, or drop --distill_weight"
            )
        dataset = PairGroupDataset(groups, args.data.group_size, seed=args.training.seed)
        collator = GroupCollator(
            self.tokenizer,
            PairTemplate.from_tokenizer(self.tokenizer),
            args.data.query_max_len,
            args.data.passage_max_len,
            with_teacher=distill,
        )
        return dataset, collator

    def build_trainer(self, args: RunArguments, model: Any, dataset: Any, collator: Any) -> Any:
        return CrossEncoderTrainer(
            model=model,
            args=args.training,
            train_dataset=dataset,
            data_collator=collator,
            processing_class=self.tokenizer,
            group_size=args.data.group_size,
            distill_weight=args.training.distill_weight,
            temperature=args.training.distill_temperature,
        )
