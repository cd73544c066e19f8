"""How jina-reranker-v3 cuts texts and splits a long candidate list into blocks (one prompt each).

Both rules are those of ``JinaForRanking.rerank`` in the published ``modeling.py`` (``jinaai/jina-reranker-v3``,
main at commit 050e171):

- **Truncation** (``_truncate_texts``): a text is tokenized alone (no special tokens: Qwen's tokenizer adds none)
  and cut to its first ``max_tokens`` tokens (512 for the query, 2,048 for a passage); a text that reaches the
  limit is replaced by the *decoded* tokens, which are re-tokenized inside the prompt. Its length (capped) is what
  the block rule counts. A text of exactly ``max_tokens`` tokens is decoded too but not counted as cut here.
- **Blocks**: passages are taken in input order; a block closes after ``block_size`` passages (125), or when the
  room left, ``max_length - 2 * query_length`` less the passages' lengths so far, falls to ``max_doc_length`` or
  below (so that one more passage of full length still fits; the query is written twice). ``max_length`` is the
  tokenizer's ``model_max_length`` (131,072 for Qwen3). The blocks' query vectors are merged afterwards
  (:func:`perank.families.jina_listwise.model.merge_blocks`).

:func:`query_prompts` applies both and writes each block's prompt: the reranker and the training runner call it
alike, so training reads exactly the prompts inference writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perank.families.jina_listwise.prompts import block_prompt


@dataclass(frozen=True)
class FittedText:
    """A text as the model reads it: ``text`` (the decoded head when it reached the limit), ``length`` (its
    tokens, at most the limit) and ``cut`` (whether tokens were dropped)."""

    text: str
    length: int
    cut: bool


def fit_text(tokenizer: Any, text: str, max_tokens: int) -> FittedText:
    """``text`` cut to ``max_tokens`` tokens of ``tokenizer`` by jina's rule (see the module docstring).

    The text is tokenized once, untruncated (the core has pre-cut it to a bounded length), and the ids are cut
    on the tokenizer's ``truncation_side``, which is what ``truncation=True, max_length=max_tokens`` keeps."""
    ids = tokenizer(text)["input_ids"]
    if len(ids) < max_tokens:
        return FittedText(text, len(ids), False)
    kept = ids[-max_tokens:] if getattr(tokenizer, "truncation_side", "right") == "left" else ids[:max_tokens]
    return FittedText(tokenizer.decode(kept), len(kept), len(ids) > max_tokens)


def plan_blocks(
    doc_lengths: list[int], query_length: int, *, max_length: int, block_size: int, max_doc_length: int
) -> list[list[int]]:
    """The passages' indices grouped into blocks, in input order, by jina's rule (see the module docstring)."""
    blocks: list[list[int]] = []
    current: list[int] = []
    room = max_length - 2 * query_length
    for index, length in enumerate(doc_lengths):
        current.append(index)
        room -= length
        if len(current) >= block_size or room <= max_doc_length:
            blocks.append(current)
            current, room = [], max_length - 2 * query_length
    if current:
        blocks.append(current)
    return blocks


@dataclass(frozen=True)
class PromptLimits:
    """What cuts a query's texts and splits its list: the reranker's options of the same names."""

    max_query_length: int
    max_doc_length: int
    max_length: int
    block_size: int
    instruction: str | None = None


def query_prompts(
    tokenizer: Any, query: str, passages: list[str], limits: PromptLimits
) -> tuple[list[str], list[list[int]], list[FittedText]]:
    """``(prompts, blocks, fitted passages)`` for one query: each block's passage indices and its prompt, texts
    cut and blocks planned by jina's rules (module docstring)."""
    fitted_query = fit_text(tokenizer, query, limits.max_query_length)
    docs = [fit_text(tokenizer, p, limits.max_doc_length) for p in passages]
    blocks = plan_blocks(
        [d.length for d in docs],
        fitted_query.length,
        max_length=limits.max_length,
        block_size=limits.block_size,
        max_doc_length=limits.max_doc_length,
    )
    prompts = [block_prompt(fitted_query.text, [docs[i].text for i in b], limits.instruction) for b in blocks]
    return prompts, blocks, docs
