"""RankGPT-style listwise reranking by text generation, with any Hugging Face causal LM.

This is PE-Rank's uncompressed baseline (the paper's "RankMistral"): the passages' full texts go into the
prompt and the LLM writes ``[4] > [2] > ...``, which :func:`perank.ranking.parsing.parse_permutation` turns into a
permutation (repairs counted). ``model_path`` is either a PE-Rank checkpoint (its LLM and tokenizer are used,
so the comparison with ``pe-rank`` is on the same weights) or a plain causal LM name/alias/folder
(``smollm2``, ``mistralai/Mistral-7B-Instruct-v0.2``).

Batching and windows are as in ``pe-rank``: the k-th sliding window of every query of a batch is generated
in one left-padded, greedy ``generate`` call. Scores are ``N - r`` for the final rank ``r`` (no probability).
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import nn

from perank.backends.causal_lm import load_causal_lm
from perank.backends.runtime import eval_mode, parse_dtype, resolve_device
from perank.families.listwise_text.prompts import PROMPT_VARIANTS, messages
from perank.ranking.parsing import REPAIR_KINDS, parse_permutation
from perank.ranking.prompting import strip_tokens
from perank.ranking.registry import register
from perank.ranking.window import QueryState, WindowReranker, share
from perank.types import InputError, Request

logger = logging.getLogger(__name__)


def load_llm(
    model_path: str,
    *,
    device: torch.device,
    dtype: torch.dtype | None,
    model_base: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[nn.Module, Any]:
    """``(llm, tokenizer)`` from a PE-Rank checkpoint (its LLM, so both families compare on the same weights)
    or a plain causal LM name/folder."""
    from perank.families.pe_rank.checkpoint import is_pe_rank_checkpoint, load_pe_rank

    if is_pe_rank_checkpoint(model_path):
        model = load_pe_rank(
            model_path, model_base=model_base, device=device, dtype=dtype, trust_remote_code=trust_remote_code
        )
        return model.llm, model.tokenizer
    return load_causal_lm(model_path, device=device, dtype=dtype, trust_remote_code=trust_remote_code)


@register("listwise-text")
class ListwiseTextReranker(WindowReranker):
    """Listwise reranking by generating a ranking of numbered passages, parsed and repaired.

    Arguments: ``model_path`` (PE-Rank checkpoint or causal LM; default: PE-Rank's default checkpoint),
    ``llm``/``tokenizer`` (already loaded objects), ``device``, ``dtype``, ``batch_size`` (queries per generate
    batch), ``window_size``, ``step``, ``prompt`` (``text`` = PE-Rank's RankMistral prompt, or ``rankgpt``),
    ``max_new_tokens`` (default ``6 * n + 10`` for a window of n).

    Per-query stats: ``latency_s``, ``tokens_processed`` (non-pad prompt tokens), ``tokens_generated`` (new
    tokens up to and including end-of-sequence), ``windows``, and the parser's repairs
    ``parse_repairs_repeated``, ``parse_repairs_out_of_range``, ``parse_repairs_missing``.
    """

    def __init__(
        self,
        model_path: str | None = None,
        *,
        llm: nn.Module | None = None,
        tokenizer: Any = None,
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
        if llm is None or tokenizer is None:
            from perank.families.pe_rank.reranker import default_model_path

            self.model_path = default_model_path(model_path)
            llm, tokenizer = load_llm(
                self.model_path,
                device=resolve_device(device),
                dtype=parse_dtype(dtype),
                model_base=model_base,
                trust_remote_code=trust_remote_code,
            )
        else:
            self.model_path = str(model_path or getattr(llm.config, "_name_or_path", ""))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.llm = llm
        self.tokenizer = tokenizer
        self.prompt = PROMPT_VARIANTS[prompt]
        self.max_new_tokens = max_new_tokens
        eos = llm.generation_config.eos_token_id if llm.generation_config is not None else None
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids = set(eos) if isinstance(eos, list) else {int(eos)}

    def describe(self) -> dict[str, Any]:
        return {
            "reranker": self.name,
            "model_path": self.model_path,
            "prompt_mode": self.prompt,
            "window_size": self.window_size,
            "step": self.step,
            "batch_size": self.batch_size,
            "max_new_tokens": self.max_new_tokens or "6n+10",
            "dtype": str(next(self.llm.parameters()).dtype).removeprefix("torch."),
        }

    @property
    def device(self) -> torch.device:
        return next(self.llm.parameters()).device

    def inference(self) -> AbstractContextManager[Any]:
        return eval_mode(self.llm)

    def start_state(self, request: Request) -> QueryState:
        state = QueryState.start(request, self.window_size, self.step)
        state.prob = [0.0] * len(state.prob)  # text generation gives no probabilities: scores are N - r
        state.stats.update({f"parse_repairs_{kind}": 0 for kind in REPAIR_KINDS})
        return state

    def rank_windows(self, k: int, states: list[QueryState], scratch: dict[str, Any]) -> None:
        """Generate, parse and apply the k-th window of every query in one ``generate`` call."""
        from transformers import GenerationConfig

        t0 = time.perf_counter()
        windows = [s.window(k) for s in states]
        prompts = [
            self.tokenizer.apply_chat_template(
                messages(
                    self.prompt,
                    self._sanitize(s.request.query.text),
                    [self._sanitize(s.request.candidates[i].text) for i in window],
                ),
                tokenize=False,
                add_generation_prompt=True,
            )
            for s, window in zip(states, windows)
        ]
        batch = self.tokenizer(
            prompts, add_special_tokens=False, padding=True, padding_side="left", return_tensors="pt"
        ).to(self.device)
        n_max = max(len(w) for w in windows)
        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens or 6 * n_max + 10,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=sorted(self.eos_ids),
        )
        with torch.no_grad():
            out = self.llm.generate(**batch, generation_config=config)
        new_tokens = out[:, batch["input_ids"].shape[1] :].tolist()
        prompt_tokens = batch["attention_mask"].sum(-1).tolist()
        elapsed = time.perf_counter() - t0
        generated = [self._generated_length(row) for row in new_tokens]
        times = share(elapsed, [p + g for p, g in zip(prompt_tokens, generated)])
        for s, window, row, n_gen, n_prompt, t in zip(states, windows, new_tokens, generated, prompt_tokens, times):
            text = self.tokenizer.decode(row[:n_gen], skip_special_tokens=True)
            order, repairs = parse_permutation(text, len(window))
            s.place(k, order)
            for kind, count in repairs.items():
                s.stats[f"parse_repairs_{kind}"] += count
            s.stats["tokens_processed"] += int(n_prompt)
            s.stats["tokens_generated"] += n_gen
            s.stats["latency_s"] += t

    def _sanitize(self, text: str) -> str:
        """User text without the tokenizer's special-token strings (they would break the chat prompt)."""
        return strip_tokens(text, self.tokenizer.all_special_tokens)

    def _generated_length(self, row: list[int]) -> int:
        """New tokens up to and including the first end-of-sequence token (the rest is padding)."""
        for i, token in enumerate(row):
            if token in self.eos_ids:
                return i + 1
        return len(row)
