"""``llm-setwise``: llm-rankers' setwise prompting ("which passage is the most relevant?") with a chat causal LM.

The prompt is built by :func:`~perank.families.prompt_rankers.prompts.setwise_prompt` (labels ``A``-``W``); the
answer is read as llm-rankers reads it from a decoder-only LLM (``scoring="generation"``): chat user turn +
``" Passage:"``, one greedy token from ``generate``, a label after strip/upper; an answer naming no label of the
set picks the first passage, as there. The sorting (``heapsort`` with ``num_child`` children per prompt,
``bubblesort`` with windows of ``num_child + 1``, top ``k``) is :mod:`perank.ranking.setwise`. llm-rankers'
``likelihood`` scoring (T5 only) and ``num_permutation`` voting are not offered.
"""

from __future__ import annotations

from typing import Any

import torch

from perank.backends.lm import LanguageModel
from perank.families.prompt_rankers.common import DEFAULT_MAX_PASSAGE_TOKENS, PromptLM
from perank.families.prompt_rankers.prompts import setwise_prompt
from perank.ranking.choices import Choice, Picks
from perank.ranking.registry import register
from perank.ranking.setwise import SetwiseReranker
from perank.types import Request


@register("llm-setwise", "setwise")
class LLMSetwiseReranker(PromptLM, SetwiseReranker):
    """Setwise LLM reranking (llm-rankers' ``setwise``).

    Arguments: ``method`` (``heapsort`` or ``bubblesort``), ``num_child`` (c: children per heap node, window
    c + 1 for bubblesort), ``k`` (the top k sorted), ``model_path`` (default ``smollm2``), ``lm``,
    ``device``, ``dtype``, ``batch_size`` (prompts per model call), ``max_passage_tokens``. Stats: see
    :mod:`perank.ranking.choices`.
    """

    def __init__(
        self,
        method: str = "heapsort",
        num_child: int = 3,
        k: int = 10,
        *,
        model_path: str | None = None,
        lm: LanguageModel | None = None,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        batch_size: int = 8,
        max_passage_tokens: int | None = DEFAULT_MAX_PASSAGE_TOKENS,
        trust_remote_code: bool = False,
    ) -> None:
        self.configure_setwise(method, num_child, k, batch_size)
        self.setup_lm(model_path, lm, device, dtype, max_passage_tokens, trust_remote_code)

    def describe(self) -> dict[str, Any]:
        return {
            "reranker": self.name,
            "method": self.method,
            "num_child": self.num_child,
            "k": self.k,
            "batch_size": self.batch_size,
            **self.lm_settings(),
        }

    def passage_texts(self, request: Request) -> tuple[list[str], int]:
        return self.cut_request(request)

    def choose_batch(self, choices: list[Choice]) -> Picks:
        prompts = [setwise_prompt(c.query, c.passages) for c in choices]
        return self.greedy_picks(prompts, [len(c.passages) for c in choices])
