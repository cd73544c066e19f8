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

from perank.families.llm_yes_no.reranker import yes_logits, yes_token_id
from perank.ranking.decoder_pair_inputs import DEFAULT_PROMPT, PromptLayout, encode_pairs, pad_batch
from perank.training.arguments import BackboneArguments, LoraArguments
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
class DataArguments(PairGroupDataArguments):
    """FlagEmbedding-style query groups, how they are cut (the 'A: '/'B: ' prefixes count), and the prompt."""

    query_max_len: int = field(default=32, metadata={"help": "query token budget ('A: ' included)"})
    passage_max_len: int = field(default=128, metadata={"help": "passage token budget ('B: ' included)"})
    prompt: str = field(default=DEFAULT_PROMPT, metadata={"help": "the instruction after the pair"})


@dataclass
class TrainingArguments(PairGroupTrainingArguments):
    """The shared training flags; a class of this module's own, so a checkpoint's pickled ``training_args.bin``
    names the family it came from."""


@dataclass
class YesNoCollator:
    """Query groups -> left-padded pairs (``group_size`` consecutive rows per group)."""

    tokenizer: Any
    layout: PromptLayout
    query_max_len: int
    passage_max_len: int
    pad_id: int

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Tensor]:
        pairs = group_pairs(features)
        encoded = encode_pairs(self.tokenizer, self.layout, pairs, self.query_max_len, self.passage_max_len)
        return pad_batch([e.input_ids for e in encoded], self.pad_id, "left")


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


class LLMYesNoRunner(PairGroupRunner):
    """Group cross-entropy fine-tuning of a causal LM on the 'Yes' logit (see the module docstring)."""

    family = "llm-yes-no"
    arguments = (ModelArguments, DataArguments, TrainingArguments)
    data_source = "recipes/build_pair_mix.sh"

    def validate(self, args: RunArguments) -> None:
        """The shared checks, then the prompt."""
        super().validate(args)
        if not args.data.prompt.strip():
            raise InputError("--prompt: empty; leave it out for FlagEmbedding's default")

    def load(self, args: RunArguments) -> tuple[Any, Any]:
        """The LM and its tokenizer, and the 'Yes' token id the scores are read at."""
        model, tokenizer = load_for_training(args.model)
        self.yes_id = yes_token_id(tokenizer)
        return model, tokenizer

    def build_collator(self, args: RunArguments) -> YesNoCollator:
        return YesNoCollator(
            self.tokenizer,
            PromptLayout.from_tokenizer(self.tokenizer, args.data.prompt),
            args.data.query_max_len,
            args.data.passage_max_len,
            pad_id=int(self.tokenizer.pad_token_id),
        )

    def pair_scores(self, model: Any, inputs: dict[str, Any]) -> tuple[Tensor, Any]:
        """The 'Yes' logit at each row's last token (the grouped scores are what goes back with the loss)."""
        return yes_logits(model, inputs, self.yes_id), None
