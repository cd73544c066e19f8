"""RankGPT-style listwise reranking by text generation, with any Hugging Face causal LM.

This is PE-Rank's uncompressed baseline (the paper's "RankMistral"): the passages' full texts go into the
prompt and the LLM writes ``[4] > [2] > ...``, which :func:`perank.parsing.parse_permutation` turns into a
permutation (repairs counted). ``model_path`` is either a PE-Rank checkpoint (its LLM and tokenizer are used,
so the comparison with ``pe-rank`` is on the same weights) or a plain causal LM name/alias/folder
(``smollm2``, ``mistralai/Mistral-7B-Instruct-v0.2``).

Batching and windows are as in ``pe-rank``: the k-th sliding window of every query of a batch is generated
in one left-padded, greedy ``generate`` call. Scores are ``N - r`` for the final rank ``r`` (no probability).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from perank.modeling.checkpoint import checkpoint_format, load_pe_rank
from perank.modeling.pe_rank import default_attn_implementation, default_dtype
from perank.modeling.resolve import resolve_model
from perank.parsing import REPAIR_KINDS, parse_permutation
from perank.prompts import PromptSpec, messages
from perank.rerankers.base import Reranker, register
from perank.rerankers.pe_rank import (
    QueryState,
    default_model_path,
    eval_mode,
    parse_dtype,
    resolve_device,
    sanitize,
    share,
)
from perank.types import InputError, Request, Result

logger = logging.getLogger(__name__)

PROMPT_VARIANTS = {"text": "text", "rankmistral": "text", "rankgpt": "rankgpt"}


def is_pe_rank_checkpoint(path: str) -> bool:
    """Whether ``path`` is a local folder in one of the PE-Rank checkpoint layouts."""
    local = Path(path)
    if not local.is_dir():
        return False
    try:
        checkpoint_format(local)
    except FileNotFoundError:
        return False
    return True


def load_causal_lm(
    model_path: str,
    *,
    device: torch.device,
    dtype: torch.dtype | None,
    model_base: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[nn.Module, Any]:
    """``(llm, tokenizer)`` from a PE-Rank checkpoint (its LLM) or a plain causal LM name/folder."""
    if is_pe_rank_checkpoint(model_path):
        model = load_pe_rank(
            model_path, model_base=model_base, device=device, dtype=dtype, trust_remote_code=trust_remote_code
        )
        return model.llm, model.tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = resolve_model(model_path)
    tokenizer = AutoTokenizer.from_pretrained(local, trust_remote_code=trust_remote_code)
    llm = AutoModelForCausalLM.from_pretrained(
        local,
        dtype=dtype or default_dtype(device),
        attn_implementation=default_attn_implementation(device),
        trust_remote_code=trust_remote_code,
    ).to(device)
    return llm, tokenizer


@register("listwise-text")
class ListwiseTextReranker(Reranker):
    """Listwise reranking by generating a ranking of numbered passages, parsed and repaired.

    Arguments: ``model_path`` (PE-Rank checkpoint or causal LM; default: PE-Rank's default checkpoint),
    ``llm``/``tokenizer`` (already loaded objects), ``device``, ``dtype``, ``batch_size`` (queries per generate
    batch), ``window_size``, ``step``, ``prompt`` (``text`` = PE-Rank's RankMistral prompt, or ``rankgpt``),
    ``max_new_tokens`` (default ``6 * n + 10`` for a window of n). Unknown keyword arguments are ignored.

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
        **_: Any,
    ) -> None:
        if prompt not in PROMPT_VARIANTS:
            raise InputError(f"unknown prompt {prompt!r}; choose one of {', '.join(PROMPT_VARIANTS)}")
        if batch_size < 1 or window_size < 1 or step < 1:
            raise InputError("batch_size, window_size and step must be positive")
        if llm is None or tokenizer is None:
            self.model_path = default_model_path(model_path)
            llm, tokenizer = load_causal_lm(
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
        self.batch_size = int(batch_size)
        self.window_size = int(window_size)
        self.step = int(step)
        self.spec = PromptSpec(PROMPT_VARIANTS[prompt])
        self.max_new_tokens = max_new_tokens
        eos = llm.generation_config.eos_token_id if llm.generation_config is not None else None
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids = set(eos) if isinstance(eos, list) else {int(eos)}

    def describe(self) -> dict[str, Any]:
        return {
            "reranker": self.name,
            "model_path": self.model_path,
            "prompt_mode": self.spec.mode,
            "window_size": self.window_size,
            "step": self.step,
            "batch_size": self.batch_size,
            "max_new_tokens": self.max_new_tokens or "6n+10",
        }

    @property
    def device(self) -> torch.device:
        return next(self.llm.parameters()).device

    def rerank(self, requests: list[Request]) -> list[Result]:
        results: list[Result] = []
        with eval_mode(self.llm):
            for start in range(0, len(requests), self.batch_size):
                results.extend(self._rerank_batch(requests[start : start + self.batch_size]))
        return results

    def _rerank_batch(self, batch: list[Request]) -> list[Result]:
        states = [QueryState.start(r, self.window_size, self.step) for r in batch]
        for s in states:
            s.prob = [0.0] * len(s.prob)  # text generation gives no probabilities: scores are N - r
            s.stats.update({f"parse_repairs_{kind}": 0 for kind in REPAIR_KINDS})
        active = [s for s in states if s.windows]
        if active:
            for k in range(max(len(s.windows) for s in active)):
                self._generate_window(k, [s for s in active if k < len(s.windows)])
        return [s.result() for s in states]

    def _generate_window(self, k: int, states: list[QueryState]) -> None:
        """Generate, parse and apply the k-th window of every query in one ``generate`` call."""
        from transformers import GenerationConfig

        t0 = time.perf_counter()
        windows = [s.window(k) for s in states]
        prompts = [
            self.tokenizer.apply_chat_template(
                messages(
                    self.spec,
                    sanitize(s.request.query.text),
                    [sanitize(s.request.candidates[i].text) for i in window],
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

    def _generated_length(self, row: list[int]) -> int:
        """New tokens up to and including the first end-of-sequence token (the rest is padding)."""
        for i, token in enumerate(row):
            if token in self.eos_ids:
                return i + 1
        return len(row)
