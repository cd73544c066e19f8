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
(:func:`perank.backends.lm_sources.load_language_model`). The arguments, the collator and the LM loading are
shared with ``llm-layerwise`` (:mod:`perank.training.llm_pairs`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from perank.families.llm_yes_no.reranker import yes_logits, yes_token_id
from perank.training.group_loss import group_loss as group_loss  # re-exported: the loss trained with
from perank.training.llm_pairs import (
    DecoderPairCollator,
    LLMPairDataArguments,
    LLMPairModelArguments,
    check_prompt,
    load_llm_for_training,
)
from perank.training.pair_group_runner import PairGroupRunner, PairGroupTrainingArguments
from perank.training.runner import RunArguments

logger = logging.getLogger("perank.train")


@dataclass
class ModelArguments(LLMPairModelArguments):
    """The causal LM to fine-tune, and LoRA with FlagEmbedding's bge-reranker-v2-gemma settings by default
    (:class:`perank.training.llm_pairs.LLMPairModelArguments`)."""


@dataclass
class DataArguments(LLMPairDataArguments):
    """FlagEmbedding-style query groups, how they are cut (the 'A: '/'B: ' prefixes count), and the prompt."""


@dataclass
class TrainingArguments(PairGroupTrainingArguments):
    """The shared training flags; a class of this module's own, so a checkpoint's pickled ``training_args.bin``
    names the family it came from."""


class LLMYesNoRunner(PairGroupRunner):
    """Group cross-entropy fine-tuning of a causal LM on the 'Yes' logit (see the module docstring)."""

    family = "llm-yes-no"
    arguments = (ModelArguments, DataArguments, TrainingArguments)
    data_source = "recipes/build_pair_mix.sh"

    def validate(self, args: RunArguments) -> None:
        """The shared checks, then the prompt."""
        super().validate(args)
        check_prompt(args.data.prompt)

    def load(self, args: RunArguments) -> tuple[Any, Any]:
        """The LM and its tokenizer, and the 'Yes' token id the scores are read at."""
        model, tokenizer = load_llm_for_training(args.model)
        self.yes_id = yes_token_id(tokenizer)
        return model, tokenizer

    def build_collator(self, args: RunArguments) -> DecoderPairCollator:
        return DecoderPairCollator.for_run(self.tokenizer, args.data)

    def pair_scores(self, model: Any, inputs: dict[str, Any]) -> tuple[Tensor, Any]:
        """The 'Yes' logit at each row's last token (the grouped scores are what goes back with the loss)."""
        return yes_logits(model, inputs, self.yes_id), None
