"""The LLM yes/no reranker (``--reranker llm-yes-no``, alias ``bge-reranker-gemma``): bge-reranker-v2-gemma.

A causal LM reads ``A: query / B: passage / prompt`` (:mod:`.inputs`) and the pair's score is the logit of the
first token of ``'Yes'`` at the last real token, as FlagEmbedding's ``FlagLLMReranker`` computes it: the same
ids, the same truncation, fp32 unless a half precision is asked for. ``model_path`` is a hub id (default
``BAAI/bge-reranker-v2-gemma``), a packaged alias (``smollm2``), a causal LM folder, or a LoRA adapter folder such
as the ``llm-yes-no`` training runner writes (its base is loaded and the adapter merged,
:meth:`perank.backends.lm.LanguageModel.from_pretrained`). Only the needed logits are computed (the last position
of each row, not the vocabulary at every position), so a batch costs what the transformer costs.

Left padding (Gemma's default) and right padding give the same scores: RoPE models see only relative positions
and the score is read at each row's last real token either way.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from perank.backends.hf_lm import HFLanguageModel
from perank.backends.lm import LanguageModel
from perank.backends.runtime import eval_mode, parse_dtype
from perank.families.llm_yes_no.inputs import (
    DEFAULT_PROMPT,
    QUERY_PREFIX,
    PromptLayout,
    encode_pairs,
    last_token,
    pad_batch,
)
from perank.ranking.budgets import TextBudgets, TokenBudget
from perank.ranking.pointwise import PairScores, PointwiseReranker
from perank.types import InputError

DEFAULT_MODEL = "BAAI/bge-reranker-v2-gemma"
PADDING_SIDES = ("left", "right")


def yes_token_id(tokenizer: Any) -> int:
    """FlagEmbedding's ``tokenizer('Yes', add_special_tokens=False)['input_ids'][0]``."""
    ids = tokenizer("Yes", add_special_tokens=False)["input_ids"]
    if not ids:
        raise InputError(f"{getattr(tokenizer, 'name_or_path', 'tokenizer')}: encodes 'Yes' as no token")
    return int(ids[0])


class DecoderPairScorer(PointwiseReranker):
    """What the decoder rerankers share: option checks, pair encoding, batching with OOM back-off, accounting.

    Subclasses set ``self.llm``/``self.tokenizer`` and implement :meth:`batch_scores` (one list per score head).
    """

    def setup_inputs(
        self,
        *,
        batch_size: int,
        max_length: int,
        max_query_length: int | None,
        prompt: str | None,
        padding_side: str,
    ) -> None:
        """Check and store the input options (FlagEmbedding's defaults: query budget ``max_length * 3 // 4``)."""
        if batch_size < 1:
            raise InputError(f"batch_size {batch_size}: must be at least 1")
        if max_length < 1:
            raise InputError(f"max_length {max_length}: must be at least 1")
        if padding_side not in PADDING_SIDES:
            raise InputError(f"padding_side {padding_side!r}: choose left or right")
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        self.max_query_length = int(max_query_length) if max_query_length is not None else self.max_length * 3 // 4
        if self.max_query_length < 1:
            raise InputError(f"max_query_length {max_query_length}: must be at least 1")
        if prompt is not None and not prompt.strip():
            raise InputError("prompt: empty; leave it out for FlagEmbedding's default")
        self.prompt = prompt if prompt is not None else DEFAULT_PROMPT
        self.padding_side = padding_side
        self.layout = PromptLayout.from_tokenizer(self.tokenizer, self.prompt)
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (self.tokenizer.eos_token_id or 0))

    def text_budgets(self) -> TextBudgets:
        """FlagEmbedding's budgets: ``max_query_length`` tokens for ``"A: " + query`` (so the query's own budget is
        that less the prefix's tokens) and ``max_length`` for a passage; its exact cut stays in :mod:`.inputs`."""
        prefix = len(self.tokenizer(QUERY_PREFIX, add_special_tokens=False)["input_ids"])
        return TextBudgets(
            query=TokenBudget(self.tokenizer, max(1, self.max_query_length - prefix), truncated_by_model=True),
            passage=TokenBudget(self.tokenizer, self.max_length, truncated_by_model=True),
        )

    def input_description(self) -> dict[str, Any]:
        return {
            "max_length": self.max_length,
            "max_query_length": self.max_query_length,
            "prompt": "default" if self.prompt == DEFAULT_PROMPT else self.prompt,
            "padding_side": self.padding_side,
            "batch_size": self.batch_size,
        }

    def encode(self, pairs: list[tuple[str, str]]) -> tuple[list[Any], dict[str, Tensor]]:
        encoded = encode_pairs(self.tokenizer, self.layout, pairs, self.max_query_length, self.max_length)
        batch = pad_batch([e.input_ids for e in encoded], self.pad_id, self.padding_side)
        return encoded, {k: v.to(self.device) for k, v in batch.items()}

    def batch_scores(self, batch: dict[str, Tensor]) -> list[list[float]]:
        """Scores of one padded batch, one list per score head (one head for the yes/no family)."""
        raise NotImplementedError

    def scores_with_backoff(self, pairs: list[tuple[str, str]]) -> tuple[list[Any], list[list[float]]]:
        """Encoded pairs and their scores; a batch that runs out of GPU memory is split in halves and retried."""
        encoded, batch = self.encode(pairs)
        try:
            with eval_mode(self.llm), torch.inference_mode():
                return encoded, self.batch_scores(batch)
        except torch.OutOfMemoryError:
            if len(pairs) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(pairs) // 2
            first, a = self.scores_with_backoff(pairs[:half])
            second, b = self.scores_with_backoff(pairs[half:])
            return first + second, [x + y for x, y in zip(a, b)]

    def score_batch(self, pairs: list[tuple[str, str]]) -> PairScores:
        encoded, heads = self.scores_with_backoff(pairs)
        return PairScores(
            scores=heads[0],
            tokens=[len(e.input_ids) for e in encoded],
            counts={"truncated_passages": [1.0 if e.truncated else 0.0 for e in encoded]},
        )


class LLMYesNoReranker(DecoderPairScorer):
    """Scores each pair by the 'Yes' logit of a causal LM (see the module docstring).

    ``lm`` (a loaded transformers :class:`~perank.backends.hf_lm.HFLanguageModel`: the inputs are
    FlagEmbedding's exact tensors) is used instead of loading ``model_path``. ``dtype`` defaults to
    float32 (FlagEmbedding's ``use_fp16=False``). ``max_query_length`` defaults to ``max_length * 3 // 4``.
    """

    name = "llm-yes-no"

    def __init__(
        self,
        model_path: str = DEFAULT_MODEL,
        *,
        lm: LanguageModel | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 128,
        max_length: int = 512,
        max_query_length: int | None = None,
        prompt: str | None = None,
        padding_side: str = "left",
        trust_remote_code: bool = False,
    ) -> None:
        self.dtype = parse_dtype(dtype) or torch.float32
        lm = lm or LanguageModel.from_pretrained(
            model_path, device=device, dtype=self.dtype, trust_remote_code=trust_remote_code
        )
        if not isinstance(lm, HFLanguageModel):
            raise InputError(f"lm: {self.name} needs a transformers model, {lm.name} is a {type(lm).__name__}")
        self.model_path = lm.name
        self.device = lm.device
        self.llm, self.tokenizer = lm.model, lm.tokenizer
        self.yes_id = yes_token_id(self.tokenizer)
        self.setup_inputs(
            batch_size=batch_size,
            max_length=max_length,
            max_query_length=max_query_length,
            prompt=prompt,
            padding_side=padding_side,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "reranker": self.name,
            "model_path": self.model_path,
            "dtype": str(self.dtype).removeprefix("torch."),
            **self.input_description(),
        }

    def batch_scores(self, batch: dict[str, Tensor]) -> list[list[float]]:
        return [yes_logits(self.llm, batch, self.yes_id).float().cpu().tolist()]


def yes_logits(llm: nn.Module, batch: dict[str, Tensor], yes_id: int) -> Tensor:
    """The 'Yes' logit at each row's last real token, computing the vocabulary projection only where needed
    (``logits_to_keep``: the last column with left padding, the rows' last positions otherwise)."""
    mask = batch["attention_mask"]
    if bool((mask[:, -1] == 1).all()):
        keep: int | Tensor = 1
        positions = torch.zeros(mask.shape[0], dtype=torch.long, device=mask.device)
    else:
        last = mask.sum(dim=1) - 1
        keep, positions = torch.unique(last, return_inverse=True)
    try:
        logits = llm(**batch, logits_to_keep=keep, use_cache=False).logits
    except TypeError:  # a remote-code model without logits_to_keep: all positions
        return last_token(llm(**batch, use_cache=False).logits[..., yes_id], mask)
    rows = torch.arange(mask.shape[0], device=logits.device)
    return logits[rows, positions.to(logits.device), yes_id]
