"""The LLM yes/no reranker (``--reranker llm-yes-no``, alias ``bge-reranker-gemma``): bge-reranker-v2-gemma.

A causal LM reads ``A: query / B: passage / prompt`` (:mod:`perank.ranking.decoder_pair_inputs`) and the pair's
score is the logit of the first token of ``'Yes'`` at the last real token, as FlagEmbedding's ``FlagLLMReranker``
computes it: the same ids, the same truncation, fp32 unless a half precision is asked for. ``model_path`` is a hub
id (default ``BAAI/bge-reranker-v2-gemma``), a packaged alias (``smollm2``), a causal LM folder, or a LoRA adapter
folder such as the ``llm-yes-no`` training runner writes (its base is loaded and the adapter merged,
:func:`perank.backends.lm_sources.load_language_model`). Only the needed logits are computed (the last position of
each row, not the vocabulary at every position), so a batch costs what the transformer costs.

Left padding (Gemma's default) and right padding give the same scores: RoPE models see only relative positions
and the score is read at each row's last real token either way.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from perank.backends.hf_lm import HFLanguageModel
from perank.backends.lm import Capability, LanguageModel
from perank.backends.lm_sources import load_language_model
from perank.backends.padding import last_real
from perank.backends.runtime import parse_dtype
from perank.ranking.decoder_pair_inputs import pad_batch
from perank.ranking.decoder_pairs import DecoderPairScorer
from perank.types import InputError

DEFAULT_MODEL = "BAAI/bge-reranker-v2-gemma"


def yes_token_id(tokenizer: Any) -> int:
    """FlagEmbedding's ``tokenizer('Yes', add_special_tokens=False)['input_ids'][0]``."""
    ids = tokenizer("Yes", add_special_tokens=False)["input_ids"]
    if not ids:
        raise InputError(f"{getattr(tokenizer, 'name_or_path', 'tokenizer')}: encodes 'Yes' as no token")
    return int(ids[0])


class LLMYesNoReranker(DecoderPairScorer):
    """Scores each pair by the 'Yes' logit of a causal LM (see the module docstring).

    ``lm`` (a loaded transformers :class:`~perank.backends.hf_lm.HFLanguageModel`: the inputs are
    FlagEmbedding's exact tensors) is used instead of loading ``model_path``. ``dtype`` defaults to
    float32 (FlagEmbedding's ``use_fp16=False``). ``max_query_length`` defaults to ``max_length * 3 // 4``.
    """

    name = "llm-yes-no"

    #: the 'Yes' logit is a next-token logit, read from FlagEmbedding's exact tensors on the transformers model
    NEEDS = frozenset({Capability.NEXT_TOKEN_LOGITS})
    lm: HFLanguageModel

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
        lm = lm or load_language_model(
            model_path, device=device, dtype=parse_dtype(dtype) or torch.float32, trust_remote_code=trust_remote_code
        )
        lm.require(self.NEEDS, self.name)
        if not isinstance(lm, HFLanguageModel):
            raise InputError(f"lm: {self.name} needs a transformers model, {lm.name} is a {type(lm).__name__}")
        self.lm = lm
        self.model_path = lm.name
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
            "dtype": self.lm.runtime()["dtype"],
            **self.input_description(),
        }

    def row_scores(self, rows: list[list[int]]) -> list[float]:
        batch = pad_batch(rows, self.lm.pad_id, self.padding_side)
        batch = {k: v.to(self.lm.device) for k, v in batch.items()}
        return yes_logits(self.lm.model, batch, self.yes_id).float().cpu().tolist()


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
        return last_real(llm(**batch, use_cache=False).logits[..., yes_id], mask)
    rows = torch.arange(mask.shape[0], device=logits.device)
    return logits[rows, positions.to(logits.device), yes_id]
