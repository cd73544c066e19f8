"""``--family jina-listwise``'s batches: one prompt per teacher-ranked list, written by the reranker's own code.

The rows are ``perank build-rank-data``'s, read, checked (DL19 refused) and drawn into slates by
:mod:`perank.training.ranked_lists`, as E2Rank's runner reads them. A slate's candidates, in first-stage order,
become ONE prompt through :func:`perank.families.jina_listwise.blocks.query_prompts` with the reranker's limits
and ``block_size`` the slate size, and are tokenised as the reranker tokenises a prompt: the token ids are the
reranker's for the same candidates (a test checks it). A slate the room rule would split into two blocks is
refused (smaller ``--slate_size`` or ``--max_doc_length``): inference would score it as two prompts.
"""

from __future__ import annotations

from typing import Any

import torch

from perank.backends.padding import pad_rows
from perank.families.jina_listwise.blocks import PromptLimits, query_prompts
from perank.types import InputError


class PromptCollator:
    """Items of :class:`perank.training.ranked_lists.RankedListDataset` -> ``input_ids``, ``attention_mask``
    (right-padded, as the reranker pads), ``positions`` (teacher ranks in prompt order, lists end to end) and
    ``lengths``."""

    def __init__(self, tokenizer: Any, limits: PromptLimits) -> None:
        self.tokenizer = tokenizer
        self.limits = limits
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def prompt_ids(self, query: str, passages: list[str]) -> list[int]:
        """The token ids of the one prompt of ``query`` and ``passages`` (in this order)."""
        limits = PromptLimits(
            self.limits.max_query_length,
            self.limits.max_doc_length,
            self.limits.max_length,
            max(len(passages), 1),
            self.limits.instruction,
        )
        prompts, blocks, _ = query_prompts(self.tokenizer, query, passages, limits)
        if len(blocks) != 1:
            raise InputError(
                f"a slate of {len(passages)} candidates of up to {limits.max_doc_length} tokens does not fit one "
                f"prompt of {limits.max_length} tokens: lower --slate_size or --max_doc_length"
            )
        return self.tokenizer(prompts[0])["input_ids"]

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        rows, positions, lengths = [], [], []
        for item in items:
            rows.append(self.prompt_ids(item["query"], [item["window"][j] for j in item["slate"]]))
            positions += item["positions"]
            lengths.append(len(item["slate"]))
        batch = pad_rows(rows, self.pad_id, side="right")
        return {
            "input_ids": batch["input_ids"],
            "attention_mask": batch["attention_mask"],
            "positions": torch.tensor(positions, dtype=torch.long),
            "lengths": torch.tensor(lengths, dtype=torch.long),
        }
