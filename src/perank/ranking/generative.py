"""The sliding-window strategy for rankers that WRITE their ranking (``[4] > [2] > ...``) as text.

RankGPT-style prompting (``listwise-text``) and DeAR (``dear``) differ only in their prompts and in how an
answer is read; the rest is here once: the k-th window of every query goes into one batched generation
(:meth:`perank.backends.lm.LanguageModel.generate`), the measured time is shared over the queries by tokens,
each answer is parsed into a permutation with :func:`perank.ranking.parsing.parse_permutation` and placed,
and the parser's repairs are counted per query. An answer with no usable identifier at all leaves the window in
its input order and is counted as a ``parse_fallbacks`` (a model that writes prose instead of a ranking should
show up in the statistics, not crash the run); such a window is also one of the ``windows_unchanged`` that every
window reranker counts (:meth:`perank.ranking.sliding_window.QueryState.place`), with the parsed answers that merely
repeat their input order. Text generation gives no probabilities: scores are ``N - r``.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from contextlib import AbstractContextManager
from typing import Any

from perank.backends.lm import Capability, LanguageModel, Sampling
from perank.ranking.budgets import TextBudgets, TokenBudget
from perank.ranking.parsing import REPAIR_KINDS, parse_permutation
from perank.ranking.prompting import strip_tokens
from perank.ranking.sliding_window import QueryState, WindowReranker, share
from perank.types import Request


class GenerativeWindowReranker(WindowReranker):
    """A window reranker whose model generates each window's ranking; a family supplies the prompts.

    Subclasses set ``self.lm`` (with :attr:`NEEDS`; optionally ``self.sampling``, ``self.raw_prompt``) in ``__init__``
    and implement :meth:`window_prompts` and :meth:`new_token_budget`; :meth:`read_answer` may be overridden
    to parse another numbering or a reasoning trace.
    """

    #: what the strategy reads of the language model
    NEEDS = frozenset({Capability.GENERATE})
    lm: LanguageModel
    #: None or a greedy Sampling decodes greedily
    sampling: Sampling | None = None
    #: prompts are plain text that wants the tokenizer's own special tokens (BOS), not a rendered chat
    raw_prompt: bool = False
    #: the query budget in the LLM's tokens. RankGPT, rank_llm and DeAR publish none (they prompt with the whole
    #: query); this is a project choice, the shipped PE-Rank's (its encoder's 256), so that ``listwise-text`` and
    #: ``pe-rank`` compare on the same query text
    max_query_tokens: int = 256

    @abstractmethod
    def window_prompts(self, k: int, states: list[QueryState]) -> list[str]:
        """The prompt text of each state's k-th window (may count ``truncated_passages`` in the states)."""

    @abstractmethod
    def new_token_budget(self, n: int) -> int:
        """How many new tokens the model may write for a window of ``n`` passages."""

    def passage_budget(self) -> TokenBudget | None:
        """A passage's share of the LLM's context, ``context // window_size`` tokens (409 for SmolLM2's 8192 and
        windows of 20; MS MARCO passages have at most ~310), cut by the core: as RankGPT shortens passages until
        a window fits the context. None when the LLM declares no context."""
        context = self.lm.context_length()
        return TokenBudget(self.tokenizer, max(1, context // self.window_size)) if context else None

    def text_budgets(self) -> TextBudgets:
        """:attr:`max_query_tokens` for the query; :meth:`passage_budget` for a passage."""
        return TextBudgets(query=TokenBudget(self.tokenizer, self.max_query_tokens), passage=self.passage_budget())

    def read_answer(self, text: str, n: int) -> tuple[list[int], dict[str, int]]:
        """Generated text -> (window permutation, repairs); RankGPT's reading by default (ids from 1)."""
        return parse_permutation(text, n)

    @property
    def tokenizer(self) -> Any:
        return self.lm.tokenizer

    def sanitize(self, text: str) -> str:
        """User text without the tokenizer's special-token strings (they would break the chat prompt)."""
        return strip_tokens(text, self.tokenizer.all_special_tokens)

    def inference(self) -> AbstractContextManager[Any]:
        return self.lm.inference()

    def start_state(self, request: Request) -> QueryState:
        state = QueryState.start(request, self.window_size, self.step)
        state.prob = [0.0] * len(state.prob)  # text generation gives no probabilities: scores are N - r
        state.stats.update({f"parse_repairs_{kind}": 0 for kind in REPAIR_KINDS})
        state.stats["parse_fallbacks"] = 0
        return state

    def rank_windows(self, k: int, states: list[QueryState], scratch: dict[str, Any]) -> None:
        """Generate, parse and apply the k-th window of every query in one ``generate`` call."""
        t0 = time.perf_counter()  # the latency includes building the prompts
        prompts = self.window_prompts(k, states)
        sizes = [len(s.window(k)) for s in states]
        out = self.lm.generate(
            prompts,
            self.new_token_budget(max(sizes)),
            sampling=self.sampling,
            add_special_tokens=self.raw_prompt,
        )
        times = share(time.perf_counter() - t0, [p + g for p, g in zip(out.prompt_tokens, out.new_tokens)])
        for s, n, text, n_prompt, n_gen, t in zip(states, sizes, out.texts, out.prompt_tokens, out.new_tokens, times):
            order, repairs = self.read_answer(text, n)
            s.place(k, order)
            for kind, count in repairs.items():
                s.stats[f"parse_repairs_{kind}"] += count
            if n and repairs["missing"] == n:
                s.stats["parse_fallbacks"] += 1
            s.stats["tokens_processed"] += int(n_prompt)
            s.stats["tokens_generated"] += n_gen
            s.stats["latency_s"] += t
