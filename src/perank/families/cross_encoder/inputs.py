"""Query-passage pairs as a cross-encoder reads them, tokenised and truncated exactly as FlagEmbedding does.

FlagEmbedding (v1.3+) builds each pair in three steps: the query alone, cut to its own budget; the passage
alone, cut to its own; then the two joined with the model's special tokens (``<s> q </s></s> p </s>`` for
XLM-R, ``[CLS] q [SEP] p [SEP]`` for BERT) with ``prepare_for_model(truncation="only_second", max_length)``,
which cuts the passage's tail. When even the whole passage cannot make room (a query filling the budget),
``prepare_for_model`` logs an error and keeps the passage as it was: the pair is then longer than
``max_length``. That quirk is kept, so scores match the peer at every setting.

Transformers 5 tokenizers no longer have ``prepare_for_model`` nor ``build_inputs_with_special_tokens``, so the
special-token layout is read once from the tokenizer's own pair encoding (:class:`PairTemplate`) and the
truncation is done here on token ids. Inference uses budgets ``(max_length*3//4, max_length, max_length)``;
training uses FlagEmbedding's ``(q + p//4, p + q//2, q + p)`` for ``query_max_len`` q and ``passage_max_len`` p.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from perank.types import InputError


@dataclass(frozen=True)
class PairTemplate:
    """Where a tokenizer puts its special tokens around a pair: ``prefix q middle p suffix``, with type ids."""

    prefix: list[int]
    middle: list[int]
    suffix: list[int]
    query_type: int
    passage_type: int
    uses_token_types: bool

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> PairTemplate:
        """Read the layout from the tokenizer's encoding of a probe pair (and check it on a second one)."""
        template = cls._probe(tokenizer, "a", "b")
        q, p = "hello world", "x y z"
        q_ids = tokenizer(q, add_special_tokens=False)["input_ids"]
        p_ids = tokenizer(p, add_special_tokens=False)["input_ids"]
        if template.join(q_ids, p_ids)[0] != tokenizer(q, p)["input_ids"]:
            raise InputError(f"{tokenizer.name_or_path}: its pair encoding is not 'specials q specials p specials'")
        return template

    @classmethod
    def _probe(cls, tokenizer: Any, a: str, b: str) -> PairTemplate:
        a_ids = tokenizer(a, add_special_tokens=False)["input_ids"]
        b_ids = tokenizer(b, add_special_tokens=False)["input_ids"]
        pair = tokenizer(a, b, return_token_type_ids=True)
        ids, types = pair["input_ids"], pair.get("token_type_ids") or [0] * len(pair["input_ids"])
        for i in range(len(ids) - len(a_ids) + 1):
            if ids[i : i + len(a_ids)] != a_ids:
                continue
            after = i + len(a_ids)
            for j in range(after, len(ids) - len(b_ids) + 1):
                if ids[j : j + len(b_ids)] == b_ids:
                    return cls(
                        prefix=ids[:i],
                        middle=ids[after:j],
                        suffix=ids[j + len(b_ids) :],
                        query_type=types[i],
                        passage_type=types[j],
                        uses_token_types="token_type_ids" in tokenizer.model_input_names,
                    )
        raise InputError(f"{tokenizer.name_or_path}: cannot find the query and passage in its pair encoding")

    @property
    def num_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    def join(self, q_ids: list[int], p_ids: list[int]) -> tuple[list[int], list[int]]:
        """Input ids and token type ids of the pair (no truncation)."""
        ids = self.prefix + q_ids + self.middle + p_ids + self.suffix
        cut = len(self.prefix) + len(q_ids) + len(self.middle)
        types = [self.query_type] * cut + [self.passage_type] * (len(ids) - cut)
        return ids, types


@dataclass
class EncodedPair:
    """One pair ready for the model, and whether its passage lost tokens."""

    input_ids: list[int]
    token_type_ids: list[int]
    truncated: bool


def encode_pairs(
    tokenizer: Any,
    template: PairTemplate,
    pairs: list[tuple[str, str]],
    query_budget: int,
    passage_budget: int,
    max_length: int,
) -> list[EncodedPair]:
    """FlagEmbedding's pair encoding: query cut to ``query_budget``, passage to ``passage_budget``, then the
    passage's tail cut so the pair fits ``max_length`` (unless the whole passage would not suffice)."""
    queries = tokenizer([q for q, _ in pairs], add_special_tokens=False, truncation=True, max_length=query_budget)[
        "input_ids"
    ]
    # one token over budget tells whether the passage alone was cut (a truncated encoding is a prefix)
    passages = tokenizer(
        [p for _, p in pairs], add_special_tokens=False, truncation=True, max_length=passage_budget + 1
    )["input_ids"]
    out = []
    for q_ids, p_ids in zip(queries, passages):
        truncated = len(p_ids) > passage_budget
        p_ids = p_ids[:passage_budget]
        excess = len(q_ids) + len(p_ids) + template.num_special - max_length
        if 0 < excess < len(p_ids):  # prepare_for_model's only_second: cut the tail, if the passage is long enough
            p_ids = p_ids[: len(p_ids) - excess]
            truncated = True
        ids, types = template.join(q_ids, p_ids)
        out.append(EncodedPair(ids, types, truncated))
    return out


def pad_pairs(encoded: list[EncodedPair], template: PairTemplate, pad_id: int, padding_side: str) -> dict[str, Tensor]:
    """The model's inputs for a batch of pairs, padded to the longest (``token_type_ids`` if it takes them)."""
    width = max(len(e.input_ids) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    types = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, e in enumerate(encoded):
        n = len(e.input_ids)
        span = slice(width - n, width) if padding_side == "left" else slice(0, n)
        ids[row, span] = torch.tensor(e.input_ids)
        mask[row, span] = 1
        types[row, span] = torch.tensor(e.token_type_ids)
    batch = {"input_ids": ids, "attention_mask": mask}
    if template.uses_token_types:
        batch["token_type_ids"] = types
    return batch
