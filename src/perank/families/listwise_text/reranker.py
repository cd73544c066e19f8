"""RankGPT-style listwise reranking by text generation, with any Hugging Face causal LM.

This is PE-Rank's uncompressed baseline (the paper's "RankMistral"): the passages' full texts go into the
prompt and the LLM writes ``[4] > [2] > ...``, which :func:`perank.ranking.parsing.parse_permutation` turns into a
permutation (repairs counted). ``model_path`` is either a PE-Rank checkpoint (its LLM and tokenizer are used,
so the comparison with ``pe-rank`` is on the same weights) or a plain causal LM name/alias/folder
(``smollm2``, ``mistralai/Mistral-7B-Instruct-v0.2``): :func:`~perank.backends.lm_sources.load_language_model`
reads either.

Batching and windows are as in ``pe-rank``: the k-th sliding window of every query of a batch is generated
in one left-padded, greedy ``generate`` call (:class:`perank.ranking.generative.GenerativeWindowReranker`, shared
with ``dear``). Scores are ``N - r`` for the final rank ``r`` (no probability).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from perank.backends.lm import LanguageModel
from perank.backends.lm_sources import load_language_model
from perank.families.listwise_text.prompts import PROMPT_VARIANTS, messages
from perank.ranking.generative import GenerativeWindowReranker
from perank.ranking.sliding_window import QueryState
from perank.types import InputError

logger = logging.getLogger(__name__)


class ListwiseTextReranker(GenerativeWindowReranker):
    """Listwise reranking by generating a ranking of numbered passages, parsed and repaired.

    Arguments: ``model_path`` (PE-Rank checkpoint or causal LM; default: PE-Rank's default checkpoint),
    ``lm`` (a loaded ``LanguageModel``), ``device``, ``dtype``, ``batch_size`` (queries per generate
    batch), ``window_size``, ``step``, ``prompt`` (``text`` = PE-Rank's RankMistral prompt, or ``rankgpt``),
    ``max_new_tokens`` (default ``6 * n + 10`` for a window of n).

    Per-query stats: ``latency_s``, ``tokens_processed`` (non-pad prompt tokens), ``tokens_generated`` (new
    tokens up to and including end-of-sequence), ``windows``, ``windows_unchanged`` (given back in their input
    order), and the parser's repairs ``parse_repairs_repeated``, ``parse_repairs_out_of_range``,
    ``parse_repairs_missing`` and ``parse_fallbacks`` (answers with no usable identifier).
    """

    name = "listwise-text"

    def __init__(
        self,
        model_path: str | None = None,
        *,
        lm: LanguageModel | None = None,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        batch_size: int = 8,
        window_size: int = 20,
        step: int = 10,
        prompt: str = "text",
        max_new_tokens: int | None = None,
        model_base: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        if prompt not in PROMPT_VARIANTS:
            raise InputError(f"unknown prompt {prompt!r}; choose one of {', '.join(PROMPT_VARIANTS)}")
        self.configure_windows(batch_size, window_size, step)
        if lm is None:
            from perank.families.pe_rank.reranker import default_model_path

            lm = load_language_model(
                default_model_path(model_path),
                device=device,
                dtype=dtype,
                base=model_base,
                trust_remote_code=trust_remote_code,
            )
        lm.require(self.NEEDS, self.name)
        self.lm = lm
        self.model_path = lm.name
        self.prompt = PROMPT_VARIANTS[prompt]
        self.max_new_tokens = max_new_tokens

    def describe(self) -> dict[str, Any]:
        return {
            "reranker": self.name,
            "model_path": self.model_path,
            "prompt_mode": self.prompt,
            "window_size": self.window_size,
            "step": self.step,
            "batch_size": self.batch_size,
            "max_new_tokens": self.max_new_tokens or "6n+10",
            "dtype": self.lm.runtime()["dtype"],
        }

    def new_token_budget(self, n: int) -> int:
        return self.max_new_tokens or 6 * n + 10

    def window_prompts(self, k: int, states: list[QueryState]) -> list[str]:
        """Each window as one user turn, rendered with the LLM's chat template."""
        return [
            self.tokenizer.apply_chat_template(
                messages(
                    self.prompt,
                    self.sanitize(s.request.query.text),
                    [self.sanitize(s.request.candidates[i].text) for i in s.window(k)],
                ),
                tokenize=False,
                add_generation_prompt=True,
            )
            for s in states
        ]
