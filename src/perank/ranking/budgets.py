"""Text budgets: the one place where a query or passage longer than its family reads is cut, before any model.

Every family declares, in :meth:`perank.ranking.base.BaseReranker.text_budgets`, how many tokens of its own
tokenizer it reads of a query and of a passage (a :class:`TokenBudget` each; ``None``: it reads none). The core
(:meth:`~perank.ranking.base.BaseReranker.rerank`) applies them to every request before the family sees it:

- the **query** is fitted to its budget (:meth:`TokenBudget.fit`). A family that writes the query's text into a
  prompt gets it cut (:meth:`TokenBudget.cut`): its first ``max_tokens`` tokens, cut at the character offset
  where the last kept token ends, so the text the family reads is a prefix of the user's (no decode/re-encode
  round trip) and a query within budget is passed on untouched, byte for byte. A family whose model input is
  already truncated to the budget by its own, published rule (FlagEmbedding's ``max_length * 3 // 4`` query,
  sentence-transformers' ``max_seq_length``: ``truncated_by_model``) keeps that exact rule: its query is only
  pre-cut by characters and counted, so its scores stay the peer's. Either way a query over budget is counted
  (``truncated_queries``) and the pipeline prints one note per run;
- a **passage** likewise: a family whose model truncates it by its own rule (every encoder family, FlagEmbedding's
  rerankers, a prompt ranker's ``max_passage_tokens``, DeAR's fitting) gets it pre-cut by characters only
  (:meth:`TokenBudget.precut`), its exact truncation and count unchanged; a family that writes passages into a
  prompt with no rule of its own (``listwise-text``, ``listwise-text-embedding``) gets each cut to its share of
  the LLM's context (:meth:`TokenBudget.cut`), counted in ``truncated_passages``.

Either way no tokenizer sees more than ``max_tokens * MAX_CHARS_PER_TOKEN`` characters. Why a character pre-cut:
a Rust tokenizer asked for ``truncation=True`` still tokenizes the WHOLE string before it truncates, so time and
memory would grow with the raw text (a 1 MB passage is ~250k tokens of ids, offsets and masks). Cutting first at
``max_tokens * MAX_CHARS_PER_TOKEN`` characters keeps every tokenizer call bounded by the budget. The bound is
generous: ordinary text has 3-6 characters per token (at most 7.4 in the DL19/DL20 passages), and the longest
tokens of common vocabularies are well under :data:`MAX_CHARS_PER_TOKEN` characters, so the pre-cut text still
holds more than ``max_tokens`` tokens whenever the full text does. The one approximation: a text that is mostly
whitespace (which some tokenizers drop) may lose words beyond the pre-cut that the model would have read; such a
query is counted as cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: characters kept per budget token before any tokenizer runs (see the module docstring)
MAX_CHARS_PER_TOKEN = 32


@dataclass(frozen=True)
class TokenBudget:
    """At most ``max_tokens`` tokens of ``tokenizer`` (a fast, Rust-backed tokenizer), special tokens not counted.

    The side that is kept follows the tokenizer's ``truncation_side`` (the head of the text, unless it truncates
    on the left), so the cut agrees with what the family's own truncation would keep. ``truncated_by_model``: the
    family's own tokenization cuts to this budget exactly, so :meth:`fit` only pre-cuts and counts.
    """

    tokenizer: Any
    max_tokens: int
    truncated_by_model: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"a token budget must be a positive integer, got {self.max_tokens!r}")

    @property
    def keeps_tail(self) -> bool:
        return getattr(self.tokenizer, "truncation_side", "right") == "left"

    @property
    def max_chars(self) -> int:
        return self.max_tokens * MAX_CHARS_PER_TOKEN

    def precut(self, text: str) -> str:
        """``text`` cut to :attr:`max_chars` characters (the same object when it is not longer)."""
        if len(text) <= self.max_chars:
            return text
        return text[-self.max_chars :] if self.keeps_tail else text[: self.max_chars]

    def count(self, text: str) -> int:
        """Tokens of ``text`` (no special tokens), for a text already pre-cut."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def fit(self, text: str) -> tuple[str, bool]:
        """``(the text the family reads, whether it is over budget)``: :meth:`cut`, or for a family that truncates
        by itself (``truncated_by_model``) the pre-cut text and whether the model will cut it."""
        if not self.truncated_by_model:
            return self.cut(text)
        head = self.precut(text)
        return head, head is not text or self.count(head) > self.max_tokens

    def cut(self, text: str) -> tuple[str, bool]:
        """``(text within budget, whether anything was cut)``: a text within budget is returned as is.

        The cut ends where the last kept token ends (starts where the first kept one starts, when keeping the
        tail). Re-tokenizing a cut text can merge differently at the edge (byte-level BPE splits one character
        into several tokens), so the result is re-counted and moved back a token until it fits.
        """
        head = self.precut(text)
        precut = head is not text
        offsets = self.tokenizer(head, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        if len(offsets) <= self.max_tokens:
            return head, precut
        if self.keeps_tail:
            starts = sorted({s for s, _ in offsets[len(offsets) - self.max_tokens :]})
            for start in starts:
                piece = head[start:]
                if self.count(piece) <= self.max_tokens:
                    return piece, True
            return "", True
        ends = sorted({e for _, e in offsets[: self.max_tokens]}, reverse=True)
        for end in ends:
            piece = head[:end]
            if self.count(piece) <= self.max_tokens:
                return piece, True
        return "", True


@dataclass(frozen=True)
class TextBudgets:
    """What a family reads of each request: a query budget and a passage budget (``None``: reads none)."""

    query: TokenBudget | None = None
    passage: TokenBudget | None = None


def special_tokens(tokenizer: Any) -> int:
    """How many special tokens the tokenizer adds around one text ([CLS] and [SEP]: 2), to turn a model's
    ``max_length`` (special tokens included) into a text budget."""
    return int(tokenizer.num_special_tokens_to_add())
