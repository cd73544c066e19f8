"""``--family cross-encoder``: FlagEmbedding's encoder-reranker fine-tuning on the shared training path.

Each training example is a query group (:mod:`perank.training.pairs`): one positive and ``group_size - 1``
negatives, every (query, passage) pair scored by the model's one-label head, and the loss is the group
cross-entropy with the positive first (FlagEmbedding's ``AbsRerankerModel``), plus the KL to the rows' teacher
scores with ``--distill_weight`` (:class:`perank.training.pair_group_runner.PairGroupTrainingArguments`).
Pairs are tokenised as FlagEmbedding's training data does: query cut to ``query_max_len + passage_max_len//4``,
passage to ``passage_max_len + query_max_len//2``, the pair to ``query_max_len + passage_max_len``
(:func:`perank.families.cross_encoder.inputs.encode_pairs`).

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

from perank.families.cross_encoder.inputs import PairTemplate, encode_pairs, pad_pairs
from perank.training.group_loss import group_loss as group_loss  # re-exported: the loss trained with
from perank.training.pair_group_runner import (
    PairGroupDataArguments,
    PairGroupRunner,
    PairGroupTrainingArguments,
    group_pairs,
)
from perank.training.runner import RunArguments
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
class DataArguments(PairGroupDataArguments):
    """FlagEmbedding-style query groups and how they are cut (the rows may carry teacher scores)."""

    data_path: str = field(default="", metadata={"help": "JSONL of {query, pos, neg[, pos_scores, neg_scores]}"})


@dataclass
class TrainingArguments(PairGroupTrainingArguments):
    """The shared training and distillation flags; a class of this module's own, so a checkpoint's pickled
    ``training_args.bin`` names the family it came from."""


@dataclass
class GroupCollator:
    """Query groups -> padded pairs (``group_size`` consecutive rows per group)."""

    tokenizer: Any
    template: PairTemplate
    query_max_len: int
    passage_max_len: int

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Tensor]:
        q, p = self.query_max_len, self.passage_max_len
        encoded = encode_pairs(self.tokenizer, self.template, group_pairs(features), q + p // 4, p + q // 2, q + p)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return pad_pairs(encoded, self.template, pad_id, self.tokenizer.padding_side)


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


class CrossEncoderRunner(PairGroupRunner):
    """Group cross-entropy fine-tuning of a cross-encoder (see the module docstring)."""

    family = "cross-encoder"
    arguments = (ModelArguments, DataArguments, TrainingArguments)
    data_source = "perank build-pair-data"

    def load(self, args: RunArguments) -> tuple[Any, Any]:
        return load_for_training(args.model, args.training.seed)

    def build_collator(self, args: RunArguments) -> GroupCollator:
        return GroupCollator(
            self.tokenizer,
            PairTemplate.from_tokenizer(self.tokenizer),
            args.data.query_max_len,
            args.data.passage_max_len,
        )

    def pair_scores(self, model: Any, inputs: dict[str, Any]) -> tuple[Tensor, Any]:
        """The one-label head's logit of each pair (the model's outputs go back with them)."""
        outputs = model(**inputs, return_dict=True)
        return outputs.logits, outputs
