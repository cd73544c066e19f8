"""``llm-pairwise``: llm-rankers' pairwise prompting ("Passage A or Passage B?") with any chat causal LM.

The prompt is :data:`~perank.families.prompt_rankers.prompts.PAIRWISE`; the answer is read as llm-rankers reads
it from a decoder-only LLM (:meth:`~perank.families.prompt_rankers.common.PromptLM.greedy_picks`: chat user
turn + ``" Passage:"``, one greedy token, ``A`` or ``B`` after strip/upper, anything else names neither). That
greedy token comes from ``generate`` itself, not from an argmax restricted to the two label tokens: the two
differ whenever the model's most likely token is another one (then llm-rankers counts no preference).
The sorting (``allpair``, ``heapsort``, ``bubblesort``, both-orders rule, top ``k``) is
:mod:`perank.ranking.pairwise`. Passages are cut to ``max_passage_tokens`` tokens first, as llm-rankers does.
"""

from __future__ import annotations

from typing import Any

import torch

from perank.backends.lm import LanguageModel
from perank.families.prompt_rankers.common import DEFAULT_MAX_PASSAGE_TOKENS, PromptLM
from perank.families.prompt_rankers.prompts import pairwise_prompt
from perank.ranking.choices import Choice, Picks
from perank.ranking.pairwise import PairwiseReranker
from perank.ranking.registry import register
from perank.types import Request


@register("llm-pairwise", "pairwise")
class LLMPairwiseReranker(PromptLM, PairwiseReranker):
    """Pairwise LLM reranking (llm-rankers' ``pairwise``).

    Arguments: ``method`` (``allpair``, ``heapsort`` or ``bubblesort``), ``k`` (the top k the sorts order),
    ``model_path`` (default ``smollm2``), ``lm``, ``device``, ``dtype``, ``batch_size`` (prompts
    per model call), ``max_passage_tokens``. Stats: see :mod:`perank.ranking.choices`.
    """

    def __init__(
        self,
        method: str = "heapsort",
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
        self.configure_pairwise(method, k, batch_size)
        self.setup_lm(model_path, lm, device, dtype, max_passage_tokens, trust_remote_code)

    def describe(self) -> dict[str, Any]:
        return {
            "reranker": self.name,
            "method": self.method,
            "k": self.k,
            "batch_size": self.batch_size,
            **self.lm_settings(),
        }

    def passage_texts(self, request: Request) -> tuple[list[str], int]:
        return self.cut_request(request)

    def choose_batch(self, choices: list[Choice]) -> Picks:
        prompts = [pairwise_prompt(c.query, c.passages[0], c.passages[1]) for c in choices]
        return self.greedy_picks(prompts, [2] * len(choices))
