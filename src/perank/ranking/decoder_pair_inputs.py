"""Query-passage pairs as FlagEmbedding's decoder rerankers read them, on token ids, exactly.

bge-reranker-v2-gemma and bge-reranker-v2-minicpm-layerwise (``FlagLLMReranker``, ``LayerWiseFlagLLMReranker``)
build one sequence per pair, without the tokenizer's special tokens::

    [bos] + tok("A: " + q)[:q_budget] + tok("\\n") + tok("B: " + p)[:max_length] + tok("\\n") + tok(prompt)

``bos`` only when the tokenizer has one that differs from its pad token. The first part (``bos + query``) and the
second (``sep + passage``) are joined by ``prepare_for_model(truncation="only_second", max_length=max_length +
len(sep) + len(prompt))``: the tail of the second part is cut (its head when the tokenizer truncates on the left),
unless it is no longer than the excess, in which case nothing is cut at all (the transformers quirk the
cross-encoder keeps too). ``sep + prompt`` is appended after that, uncut. Batches are padded to a multiple of 8 on
the tokenizer's side, and the score is read at the last real token: column -1 when every row ends with a real
token (left padding), else position ``mask.sum() - 1``.

This layout is shared by two families (``llm-yes-no``, ``llm-layerwise``) and the yes/no training runner, so it
lives below them; the pointwise strategy over it is :mod:`perank.ranking.decoder_pairs`.

Transformers 5 tokenizers have no ``prepare_for_model``, so the truncation is done here on ids. The same layout
is used for training (:mod:`perank.families.llm_yes_no.training`), so a fine-tuned model is scored on the inputs
it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from perank.backends.padding import pad_rows

#: FlagEmbedding's default prompt (bge-reranker-v2-gemma's model card uses the same)
DEFAULT_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the query by providing "
    "a prediction of either 'Yes' or 'No'."
)
QUERY_PREFIX = "A: "
PASSAGE_PREFIX = "B: "
SEPARATOR = "\n"
PAD_MULTIPLE = 8


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass(frozen=True)
class PromptLayout:
    """The token ids that surround every pair: an optional bos, the separator and the prompt."""

    bos: list[int]
    sep: list[int]
    prompt: list[int]
    cut_left: bool

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, prompt: str = DEFAULT_PROMPT) -> PromptLayout:
        bos = tokenizer.bos_token_id
        return cls(
            bos=[bos] if bos is not None and bos != tokenizer.pad_token_id else [],
            sep=_ids(tokenizer, SEPARATOR),
            prompt=_ids(tokenizer, prompt),
            cut_left=getattr(tokenizer, "truncation_side", "right") == "left",
        )


@dataclass
class EncodedPair:
    """One pair's input ids, and whether its passage lost tokens (to its budget or to the pair's)."""

    input_ids: list[int]
    truncated: bool


def _cut(ids: list[int], keep: int, left: bool) -> list[int]:
    return ids[len(ids) - keep :] if left else ids[:keep]


def encode_pairs(
    tokenizer: Any,
    layout: PromptLayout,
    pairs: list[tuple[str, str]],
    query_max_length: int,
    max_length: int,
) -> list[EncodedPair]:
    """FlagEmbedding's pair encoding (see the module docstring)."""
    if not pairs:
        return []
    queries = tokenizer(
        [QUERY_PREFIX + q for q, _ in pairs], add_special_tokens=False, truncation=True, max_length=query_max_length
    )["input_ids"]
    # one token over budget tells whether the passage alone was cut
    passages = tokenizer(
        [PASSAGE_PREFIX + p for _, p in pairs], add_special_tokens=False, truncation=True, max_length=max_length + 1
    )["input_ids"]
    budget = max_length + len(layout.sep) + len(layout.prompt)
    out = []
    for q_ids, p_ids in zip(queries, passages):
        truncated = len(p_ids) > max_length
        first = layout.bos + list(q_ids)
        second = layout.sep + _cut(list(p_ids), max_length, layout.cut_left)
        excess = len(first) + len(second) - budget
        if 0 < excess < len(second):
            second = _cut(second, len(second) - excess, layout.cut_left)
            truncated = True
        out.append(EncodedPair(first + second + layout.sep + layout.prompt, truncated))
    return out


def pad_batch(rows: list[list[int]], pad_id: int, padding_side: str) -> dict[str, Tensor]:
    """``input_ids`` and ``attention_mask`` padded on ``padding_side`` to the longest row rounded up to a multiple
    of 8 (FlagEmbedding's tokenizer call); the score is read at each row's last real token
    (:func:`perank.backends.padding.last_real`)."""
    return pad_rows(rows, pad_id, side=padding_side, multiple=PAD_MULTIPLE)
