"""``src/train.py --family colbert``: fine-tune a ColBERT model on FlagEmbedding query groups.

Data: FlagEmbedding's JSONL (``{"query", "pos", "neg"}``, optionally ``pos_scores``/``neg_scores`` for
distillation), read and validated up front by :mod:`perank.training.pairs`. Flags keep FlagEmbedding's names where
it has them (``--train_group_size``, ``--query_max_len``, ``--passage_max_len``, ``--temperature``,
``--kd_loss_type``, bge-m3's ``--fix_encoder`` and ``--colbert_dim``), plus ``--in_batch_negatives``,
``--use_teacher_scores`` (False: ignore the data's scores, e.g. when files with different score scales are mixed)
and every ``transformers.TrainingArguments`` flag. The loss is :mod:`.loss`'s.

Saves: the output folder and every ``checkpoint-*`` are bge-m3-layout ColBERT folders (encoder, tokenizer,
``colbert_linear.pt``) that ``--reranker colbert --model-path DIR`` loads. Resuming builds the model from the
checkpoint folder (so its ``colbert_linear.pt`` is restored) and the Trainer then restores optimizer, scheduler
and data position (its reload of the folder's ``model.safetensors`` is mapped onto the encoder by
:meth:`ColbertTrainingModel.load_state_dict`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer

from perank.families.colbert.loss import KD_LOSS_TYPES, ColbertTrainingModel
from perank.families.colbert.model import COLBERT_LINEAR, load_colbert
from perank.training.arguments import TrainingArguments as BaseTrainingArguments
from perank.training.runner import RunArguments, TrainingRunner
from perank.training.saving import gathered_for_save
from perank.types import InputError


@dataclass
class ModelArguments:
    """The starting model and what trains."""

    model_name_or_path: str = field(
        default="all-minilm-l6-v2",
        metadata={"help": "a bge-m3-style ColBERT folder or hub id, or a plain encoder (identity projection)"},
    )
    fix_encoder: bool = field(default=False, metadata={"help": "freeze the encoder: train colbert_linear only"})
    colbert_dim: int = field(
        default=-1, metadata={"help": "projection size for a plain encoder (-1: hidden size, identity start)"}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "run a model's own code from the hub"})


@dataclass
class DataArguments:
    """The query groups and how they are cut."""

    data_path: str = field(default="", metadata={"help": "FlagEmbedding JSONL: query, pos, neg (+ teacher scores)"})
    train_group_size: int = field(default=8, metadata={"help": "passages per query: 1 positive + negatives"})
    query_max_len: int = field(default=32, metadata={"help": "query tokens in training (FlagEmbedding's default)"})
    passage_max_len: int = field(default=128, metadata={"help": "passage tokens in training (FlagEmbedding's)"})
    use_teacher_scores: bool = field(
        default=True, metadata={"help": "distil from pos_scores/neg_scores when the data has them (FlagEmbedding)"}
    )


@dataclass
class TrainingArguments(BaseTrainingArguments):
    """The shared TrainingArguments plus the ColBERT loss settings."""

    temperature: float = field(default=0.02, metadata={"help": "scores (normalised MaxSim) are divided by it"})
    in_batch_negatives: bool = field(default=True, metadata={"help": "score every query against all passages"})
    kd_loss_type: str = field(
        default="kl_div", metadata={"help": "distillation with teacher scores: kl_div or m3_kd_loss"}
    )

    def __post_init__(self) -> None:
        # batches carry texts that the model's forward signature does not name; the collator tokenizes them
        self.remove_unused_columns = False
        super().__post_init__()


class GroupCollator:
    """Items of :class:`perank.training.pairs.PairGroupDataset` -> padded query and passage tensors."""

    def __init__(self, tokenizer: Any, query_max_len: int, passage_max_len: int, teacher: bool = True) -> None:
        self.tokenizer = tokenizer
        self.query_max_len = query_max_len
        self.passage_max_len = passage_max_len
        self.teacher = teacher  # pass the data's teacher scores on (distillation)

    def _tokenize(self, texts: list[str], max_length: int) -> Any:
        return self.tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        queries = self._tokenize([item["query"] for item in items], self.query_max_len)
        passages = self._tokenize([p for item in items for p in item["passages"]], self.passage_max_len)
        batch = {
            "query_input_ids": queries["input_ids"],
            "query_attention_mask": queries["attention_mask"],
            "passage_input_ids": passages["input_ids"],
            "passage_attention_mask": passages["attention_mask"],
        }
        teachers = [item["teacher"] for item in items]
        if self.teacher and all(t is not None for t in teachers):
            batch["teacher_scores"] = torch.tensor(teachers, dtype=torch.float32)
        return batch


class ColbertTrainer(Trainer):
    """A Trainer whose saves are ColBERT folders (only the public ``save_model`` is overridden)."""

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Write the encoder, tokenizer and ``colbert_linear.pt`` (gathered first under ZeRO-3)."""
        output_dir = output_dir or self.args.output_dir
        module: ColbertTrainingModel = self.model
        with gathered_for_save(self):
            if not self.args.should_save:
                return
            module.colbert.save(output_dir)
            torch.save(self.args, os.path.join(output_dir, "training_args.bin"))


class ColbertRunner(TrainingRunner):
    """ColBERT fine-tuning: the encoder and the projection (or the projection alone with ``--fix_encoder``)."""

    family = "colbert"

    def __init__(self) -> None:
        #: the ``checkpoint-*`` folder being resumed, which the model is then built from
        self.resume_folder: str | None = None

    def argument_classes(self) -> tuple[type[Any], type[Any], type[Any]]:
        return ModelArguments, DataArguments, TrainingArguments

    def validate(self, args: RunArguments) -> None:
        """Data is given, group size, lengths, temperature, distillation and projection size make sense."""
        data, training = args.data, args.training
        if not data.data_path:
            raise InputError("--data_path is required (FlagEmbedding JSONL: query, pos, neg)")
        if not Path(data.data_path).is_file():  # before any model is loaded
            raise InputError(f"--data_path {data.data_path}: file not found")
        if data.train_group_size < 1:
            raise InputError(f"--train_group_size {data.train_group_size}: must be at least 1")
        for flag in ("query_max_len", "passage_max_len"):
            if getattr(data, flag) < 2:
                raise InputError(f"--{flag} {getattr(data, flag)}: must be at least 2 (the special tokens)")
        if not training.temperature > 0:
            raise InputError(f"--temperature {training.temperature}: must be positive")
        if training.kd_loss_type not in KD_LOSS_TYPES:
            raise InputError(f"--kd_loss_type {training.kd_loss_type!r}: choose one of {', '.join(KD_LOSS_TYPES)}")
        if args.model.colbert_dim == 0 or args.model.colbert_dim < -1:
            raise InputError(f"--colbert_dim {args.model.colbert_dim}: a positive size, or -1 for the hidden size")

    def restore_settings(self, args: RunArguments, checkpoint: str) -> None:
        """A checkpoint folder is a ColBERT folder: build the model from it (its projection included)."""
        if (Path(checkpoint) / COLBERT_LINEAR).is_file():
            self.resume_folder = checkpoint

    def build_model(self, args: RunArguments) -> ColbertTrainingModel:
        """The ColBERT model in fp32 on CPU (the Trainer moves it and applies mixed precision)."""
        model_args = args.model
        colbert = load_colbert(
            self.resume_folder or model_args.model_name_or_path,
            dim=None if model_args.colbert_dim < 0 else model_args.colbert_dim,
            trust_remote_code=model_args.trust_remote_code,
        )
        return ColbertTrainingModel(
            colbert,
            temperature=args.training.temperature,
            in_batch_negatives=args.training.in_batch_negatives,
            kd_loss_type=args.training.kd_loss_type,
            freeze_encoder=model_args.fix_encoder,
        )

    def build_dataset(self, args: RunArguments, model: ColbertTrainingModel) -> tuple[Any, Any]:
        """Every group validated (file:line errors), sampled per item and epoch; tokenized by the collator."""
        from perank.training.pairs import PairGroupDataset, read_pair_groups

        data = args.data
        dataset = PairGroupDataset(read_pair_groups(data.data_path), data.train_group_size, seed=args.training.seed)
        collator = GroupCollator(
            model.colbert.tokenizer, data.query_max_len, data.passage_max_len, teacher=data.use_teacher_scores
        )
        return dataset, collator

    def build_trainer(self, args: RunArguments, model: Any, dataset: Any, collator: Any) -> ColbertTrainer:
        return ColbertTrainer(model=model, args=args.training, train_dataset=dataset, data_collator=collator)
