"""What the runners that fine-tune a causal LM on query groups share (``llm-yes-no``, ``llm-layerwise``).

Both train FlagEmbedding's decoder rerankers, which read a pair the same way
(:mod:`perank.ranking.decoder_pair_inputs`: ``A: q / B: p / prompt``, left padded, the score read at the last
token), from the same LM with the same LoRA. What they share is written here once, on top of the pair-group path
(:mod:`perank.training.pair_group_runner`):

- :class:`LLMPairModelArguments`: the causal LM (the packaged ``smollm2`` by default) and LoRA r32 / alpha 64 on
  q/k/v/o (FlagEmbedding's bge-reranker-v2-gemma and layerwise example recipes);
- :class:`LLMPairDataArguments`: the query groups, their budgets (the ``A: ``/``B: `` prefixes count) and the prompt;
- :class:`DecoderPairCollator`: a batch of query groups as the reranker's left-padded token ids;
- :func:`load_llm_for_training`: the LM in fp32 and its tokenizer, LoRA-wrapped unless ``--lora_enable False``.

The model is loaded through the backends' loader (:mod:`perank.backends.lm_loading`), as every family loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from perank.ranking.decoder_pair_inputs import DEFAULT_PROMPT, PromptLayout, encode_pairs, pad_batch
from perank.training.arguments import BackboneArguments, LoraArguments
from perank.training.pair_group_runner import PairGroupDataArguments, group_pairs
from perank.types import InputError


@dataclass
class LLMPairModelArguments(BackboneArguments, LoraArguments):
    """The causal LM to fine-tune, and LoRA with FlagEmbedding's decoder-reranker settings by default."""

    model_name_or_path: str = field(default="smollm2", metadata={"help": "causal LM: hub id, folder or alias"})
    lora_enable: bool = field(default=True, metadata={"help": "train LoRA adapters (False: the full LLM)"})
    lora_r: int = 32
    lora_alpha: int = 64
    lora_target_modules: str = field(
        default="q_proj,k_proj,v_proj,o_proj", metadata={"help": "comma-separated module names (or 'all-linear')"}
    )


@dataclass
class LLMPairDataArguments(PairGroupDataArguments):
    """FlagEmbedding-style query groups, how they are cut (the 'A: '/'B: ' prefixes count), and the prompt."""

    query_max_len: int = field(default=32, metadata={"help": "query token budget ('A: ' included)"})
    passage_max_len: int = field(default=128, metadata={"help": "passage token budget ('B: ' included)"})
    prompt: str = field(default=DEFAULT_PROMPT, metadata={"help": "the instruction after the pair"})


def check_prompt(prompt: str) -> None:
    """Refuse an empty ``--prompt`` (the reranker refuses one too)."""
    if not prompt.strip():
        raise InputError("--prompt: empty; leave it out for FlagEmbedding's default")


@dataclass
class DecoderPairCollator:
    """Query groups -> left-padded pairs (``group_size`` consecutive rows per group), the reranker's token ids."""

    tokenizer: Any
    layout: PromptLayout
    query_max_len: int
    passage_max_len: int
    pad_id: int

    @classmethod
    def for_run(cls, tokenizer: Any, data: LLMPairDataArguments) -> DecoderPairCollator:
        """The collator of a run's data flags (its prompt and budgets)."""
        return cls(
            tokenizer,
            PromptLayout.from_tokenizer(tokenizer, data.prompt),
            data.query_max_len,
            data.passage_max_len,
            pad_id=int(tokenizer.pad_token_id),
        )

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Tensor]:
        pairs = group_pairs(features)
        encoded = encode_pairs(self.tokenizer, self.layout, pairs, self.query_max_len, self.passage_max_len)
        return pad_batch([e.input_ids for e in encoded], self.pad_id, "left")


def load_llm_for_training(model_args: LLMPairModelArguments) -> tuple[torch.nn.Module, Any]:
    """The causal LM in fp32 (mixed precision is the Trainer's), LoRA-wrapped unless ``--lora_enable False``,
    and its tokenizer (a pad token set to eos when it has none). A packaged alias is what the adapter config
    names as its base, not this machine's cache path, so the saved adapter loads wherever the package is."""
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
        if source != model_args.model_name_or_path:
            model.peft_config["default"].base_model_name_or_path = model_args.model_name_or_path
    return model, tokenizer
