"""``--family llm-yes-no``: FlagEmbedding's LLM reranker fine-tuning (bge-reranker-v2-gemma) on the shared path.

Each training example is a query group (:mod:`perank.training.pairs`, the JSONL the cross-encoder runner reads): one
positive and ``group_size - 1`` negatives. Every pair is laid out as the ``llm-yes-no`` reranker reads it
(:mod:`perank.ranking.decoder_pair_inputs`: ``A: q / B: p / prompt``, query cut to ``query_max_len``, passage to
``passage_max_len``), left padded, and scored by the 'Yes' logit at the last token; the loss is the group
cross-entropy with the positive first (FlagEmbedding's ``AbsRerankerModel``; the OR TokenLoss is the same). By
default the LLM is trained through LoRA adapters (r 32, alpha 64 on q/k/v/o, FlagEmbedding's bge-reranker-v2-gemma
recipe); ``--lora_enable False`` trains it fully.

The model the Trainer holds is the (peft-wrapped) causal LM itself and the loss lives in ``compute_loss``, so each
save is a plain peft adapter folder (``adapter_config.json`` naming the base) or a plain model folder, with the
tokenizer beside it: ``llm-yes-no`` loads either with ``model_path=DIR``
(:func:`perank.backends.lm_sources.load_language_model`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from transformers import Trainer

from perank.families.llm_yes_no.reranker import yes_logits, yes_token_id
from perank.ranking.decoder_pair_inputs import DEFAULT_PROMPT, PromptLayout, encode_pairs, pad_batch
from perank.training.arguments import BackboneArguments, LoraArguments
from perank.training.arguments import TrainingArguments as BaseTrainingArguments
from perank.training.group_loss import group_loss
from perank.training.runner import RunArguments, TrainingRunner
from perank.types import InputError

logger = logging.getLogger("perank.train")


@dataclass
class ModelArguments(BackboneArguments, LoraArguments):
    """The causal LM to fine-tune, and LoRA with FlagEmbedding's bge-reranker-v2-gemma settings by default."""

    model_name_or_path: str = field(default="smollm2", metadata={"help": "causal LM: hub id, folder or alias"})
    lora_enable: bool = field(default=True, metadata={"help": "train LoRA adapters (False: the full LLM)"})
    lora_r: int = 32
    lora_alpha: int = 64
    lora_target_modules: str = field(
        default="q_proj,k_proj,v_proj,o_proj", metadata={"help": "comma-separated module names (or 'all-linear')"}
    )


@dataclass
class DataArguments:
    """FlagEmbedding-style query groups and how they are cut."""

    data_path: str = field(default="", metadata={"help": "JSONL of {query, pos, neg}"})
    group_size: int = field(default=8, metadata={"help": "passages per group: 1 positive + group_size-1 negatives"})
    query_max_len: int = field(default=32, metadata={"help": "query token budget ('A: ' included)"})
    passage_max_len: int = field(default=128, metadata={"help": "passage token budget ('B: ' included)"})
    prompt: str = field(default=DEFAULT_PROMPT, metadata={"help": "the instruction after the pair"})


@dataclass
class TrainingArguments(BaseTrainingArguments):
    """Shared training flags (the batch carries query groups the model's forward does not name)."""

    def __post_init__(self) -> None:
        self.remove_unused_columns = False
        super().__post_init__()


@dataclass
class YesNoCollator:
    """Query groups -> left-padded pairs (``group_size`` consecutive rows per group)."""

    tokenizer: Any
    layout: PromptLayout
    query_max_len: int
    passage_max_len: int
    pad_id: int

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Tensor]:
        pairs = [(f["query"], p) for f in features for p in f["passages"]]
        encoded = encode_pairs(self.tokenizer, self.layout, pairs, self.query_max_len, self.passage_max_len)
        return pad_batch([e.input_ids for e in encoded], self.pad_id, "left")


class YesNoTrainer(Trainer):
    """A Trainer whose ``compute_loss`` is :func:`group_loss` of the 'Yes' logits of each batch's groups."""

    # the loss is a per-batch mean: the Trainer divides it by the gradient accumulation steps
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, group_size: int, yes_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group_size = group_size
        self.yes_id = yes_id

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        scores = yes_logits(model, inputs, self.yes_id).float().view(-1, self.group_size)
        loss = group_loss(scores)
        return (loss, {"scores": scores}) if return_outputs else loss


def load_for_training(model_args: ModelArguments) -> tuple[torch.nn.Module, Any]:
    """The causal LM in fp32 (mixed precision is the Trainer's), LoRA-wrapped unless ``--lora_enable False``,
    and its tokenizer (a pad token set to eos when it has none)."""
    from perank.backends.lm_loading import causal_lm_weights, load_tokenizer
    from perank.backends.resolve import resolve_model
    from perank.training.lora import apply_lora

    source = resolve_model(model_args.model_name_or_path)
    remote = model_args.trust_remote_code
    try:
        tokenizer = load_tokenizer(source, trust_remote_code=remote)
        model = causal_lm_weights(
            source, dtype=torch.float32, attn=model_args.attn_implementation or None, trust_remote_code=remote
        )
    except (OSError, InputError) as exc:
        raise InputError(f"--model_name_or_path {model_args.model_name_or_path}: cannot load a causal LM") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.use_cache = False
    if model_args.lora_enable:
        model = apply_lora(model, model_args)
        if source != model_args.model_name_or_path:  # a packaged alias: record it, not this machine's cache path
            model.peft_config["default"].base_model_name_or_path = model_args.model_name_or_path
    return model, tokenizer


class LLMYesNoRunner(TrainingRunner):
    """Group cross-entropy fine-tuning of a causal LM on the 'Yes' logit (see the module docstring)."""

    family = "llm-yes-no"

    def argument_classes(self) -> tuple[type[Any], type[Any], type[Any]]:
        return ModelArguments, DataArguments, TrainingArguments

    def validate(self, args: RunArguments) -> None:
        """Data is given, groups hold a negative, budgets and the prompt make sense."""
        data = args.data
        if not data.data_path:
            raise InputError("--data_path is required (FlagEmbedding JSONL, e.g. from recipes/build_pair_mix.sh)")
        if data.group_size < 2:
            raise InputError(f"--group_size {data.group_size}: must be at least 2 (a positive and a negative)")
        if data.query_max_len < 1 or data.passage_max_len < 1:
            raise InputError("--query_max_len and --passage_max_len must be at least 1")
        if not data.prompt.strip():
            raise InputError("--prompt: empty; leave it out for FlagEmbedding's default")

    def build_model(self, args: RunArguments) -> Any:
        model, tokenizer = load_for_training(args.model)
        self.tokenizer = tokenizer
        self.yes_id = yes_token_id(tokenizer)
        return model

    def build_dataset(self, args: RunArguments, model: Any) -> tuple[Any, Any]:
        """Every group validated (file:line errors)."""
        from perank.training.pairs import PairGroupDataset, read_pair_groups

        groups = read_pair_groups(args.data.data_path)
        dataset = PairGroupDataset(groups, args.data.group_size, seed=args.training.seed)
        collator = YesNoCollator(
            self.tokenizer,
            PromptLayout.from_tokenizer(self.tokenizer, args.data.prompt),
            args.data.query_max_len,
            args.data.passage_max_len,
            pad_id=int(self.tokenizer.pad_token_id),
        )
        return dataset, collator

    def build_trainer(self, args: RunArguments, model: Any, dataset: Any, collator: Any) -> Any:
        return YesNoTrainer(
            model=model,
            args=args.training,
            train_dataset=dataset,
            data_collator=collator,
            processing_class=self.tokenizer,
            group_size=args.data.group_size,
            yes_id=self.yes_id,
        )
