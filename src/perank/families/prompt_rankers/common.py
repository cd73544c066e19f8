"""What the three prompt-ranker families share: loading the LM, option checks, passage truncation, describe()."""

from __future__ import annotations

from typing import Any

import torch

from perank.backends.lm import Capability, LanguageModel
from perank.backends.lm_sources import load_language_model
from perank.families.prompt_rankers.prompts import ANSWER_PREFIX, parse_label
from perank.ranking.budgets import TextBudgets, TokenBudget
from perank.ranking.choices import Picks
from perank.types import InputError, Request

#: the packaged SmolLM2-135M-Instruct (see :mod:`perank.backends.resolve`)
DEFAULT_MODEL = "smollm2"
#: llm-rankers' ``--passage_length`` default: passages are cut to this many tokens before prompting
DEFAULT_MAX_PASSAGE_TOKENS = 128
#: llm-rankers' ``--query_length`` default: queries are cut to this many tokens before prompting
DEFAULT_MAX_QUERY_TOKENS = 128
#: what the prompts read of the LM: a label's logit or one greedy token (pointwise yes/no, pairwise, setwise),
#: a query's log-likelihood (pointwise qlm)
NEEDS = frozenset({Capability.NEXT_TOKEN_LOGITS, Capability.LOGLIK})


class PromptLM:
    """Mixin: the language model and the options every prompt ranker takes (set by :meth:`setup_lm`)."""

    lm: LanguageModel
    model_path: str
    max_passage_tokens: int | None

    def setup_lm(
        self,
        model_path: str | None,
        lm: LanguageModel | None,
        device: str | None,
        dtype: str | torch.dtype | None,
        max_passage_tokens: int | None,
        trust_remote_code: bool,
    ) -> None:
        """Take ``lm`` (or load ``model_path``), check it reads what the prompt rankers read, check the options."""
        if max_passage_tokens is not None and (
            isinstance(max_passage_tokens, bool) or not isinstance(max_passage_tokens, int) or max_passage_tokens < 1
        ):
            raise InputError(f"max_passage_tokens must be a positive integer or None, got {max_passage_tokens!r}")
        self.lm = lm or load_language_model(
            model_path or DEFAULT_MODEL, device=device, dtype=dtype, trust_remote_code=trust_remote_code
        )
        self.lm.require(NEEDS, self.name)
        self.model_path = self.lm.name
        self.max_passage_tokens = max_passage_tokens

    def text_budgets(self) -> TextBudgets:
        """llm-rankers' ``--query_length`` (128 tokens) for the query; for a passage its ``max_passage_tokens`` (cut
        and counted by :meth:`cut`, as llm-rankers cuts), or with ``max_passage_tokens=None`` the LM's context."""
        tokenizer = self.lm.tokenizer
        query = TokenBudget(tokenizer, DEFAULT_MAX_QUERY_TOKENS)
        if self.max_passage_tokens:
            return TextBudgets(query, TokenBudget(tokenizer, self.max_passage_tokens, truncated_by_model=True))
        context = self.lm.context_length()
        return TextBudgets(query, TokenBudget(tokenizer, context) if context else None)

    def cut(self, text: str) -> tuple[str, bool]:
        """A passage as the prompts show it: cut to ``max_passage_tokens`` tokens (and whether it was cut)."""
        return self.lm.truncate(text, self.max_passage_tokens)

    def cut_request(self, request: Request) -> tuple[list[str], int]:
        """The request's passages as the prompts show them, and how many were cut."""
        cut = [self.cut(c.text) for c in request.candidates]
        return [text for text, _ in cut], sum(was_cut for _, was_cut in cut)

    def greedy_picks(self, prompts: list[str], sizes: list[int]) -> Picks:
        """llm-rankers' decoder-only answer: each prompt rendered as a chat user turn + " Passage:", one greedy
        token, decoded, stripped and upper-cased, read as one of the first ``sizes[i]`` labels."""
        rows = [self.lm.encode(self.lm.render(p, ANSWER_PREFIX)) for p in prompts]
        tokens = self.lm.greedy_next_tokens(rows)
        picks = [parse_label(self.lm.decode_token(t), size) for t, size in zip(tokens, sizes)]
        return Picks(picks=picks, prompt_tokens=[len(r) for r in rows], generated_tokens=[1] * len(rows))

    def lm_settings(self) -> dict[str, Any]:
        """The describe() entries every prompt ranker shares."""
        return {
            "model_path": self.model_path,
            "max_passage_tokens": self.max_passage_tokens,
            "chat_template": self.lm.has_chat_template,
            **{key: self.lm.runtime()[key] for key in ("dtype", "device")},
        }
