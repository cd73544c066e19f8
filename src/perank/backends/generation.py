"""Batched text generation with a causal LM, shared by every family that ranks by writing ``[4] > [2] > ...``.

What those families share is here once: prompts are tokenised together and LEFT-padded (so every row's new
tokens start at the same column), one ``generate`` call serves the whole batch, decoding is greedy unless a
sampling temperature is given (then seeded, inside a forked RNG so the caller's random state is untouched),
and each row's generated length counts the tokens up to and including its first end-of-sequence token (what
follows is padding, not work). Building the prompts, and keeping user text free of special tokens, is the
caller's (:mod:`perank.ranking.generative`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class Sampling:
    """Decoding settings: greedy when ``temperature`` is 0, else sampling seeded with ``seed``."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


@dataclass
class Generated:
    """One batch's output: each row's decoded new text, non-pad prompt tokens and generated tokens."""

    texts: list[str]
    prompt_tokens: list[int]
    new_tokens: list[int]
    elapsed_s: float


class TextGenerator:
    """A causal LM and its tokenizer, generating for a batch of prompt strings at once."""

    def __init__(self, llm: nn.Module, tokenizer: Any) -> None:
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.llm = llm
        self.tokenizer = tokenizer
        eos = llm.generation_config.eos_token_id if llm.generation_config is not None else None
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids = set(eos) if isinstance(eos, list) else {int(eos)}

    @property
    def device(self) -> torch.device:
        return next(self.llm.parameters()).device

    def context_limit(self) -> int | None:
        """The most positions the model takes (``max_position_embeddings``), if its config says."""
        value = getattr(getattr(self.llm, "config", None), "max_position_embeddings", None)
        return int(value) if isinstance(value, int) and value > 0 else None

    def generate(
        self,
        prompts: list[str],
        max_new_tokens: int,
        *,
        sampling: Sampling | None = None,
        add_special_tokens: bool = False,
    ) -> Generated:
        """Generate for every prompt in one left-padded call. Chat-template prompts already carry their special
        tokens (``add_special_tokens=False``); a raw text prompt wants the tokenizer's (e.g. BOS)."""
        from transformers import GenerationConfig

        t0 = time.perf_counter()
        batch = self.tokenizer(
            prompts, add_special_tokens=add_special_tokens, padding=True, padding_side="left", return_tensors="pt"
        ).to(self.device)
        sampling = sampling or Sampling()
        options: dict[str, Any] = {"do_sample": False}
        if not sampling.greedy:
            options = {"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p}
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=sorted(self.eos_ids),
            **options,
        )
        with torch.no_grad():
            if sampling.greedy:
                out = self.llm.generate(**batch, generation_config=config)
            else:
                devices = [self.device] if self.device.type == "cuda" else []
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(sampling.seed)
                    out = self.llm.generate(**batch, generation_config=config)
        rows = out[:, batch["input_ids"].shape[1] :].tolist()
        prompt_tokens = [int(n) for n in batch["attention_mask"].sum(-1).tolist()]
        new_tokens = [self.generated_length(row) for row in rows]
        texts = [self.tokenizer.decode(row[:n], skip_special_tokens=True) for row, n in zip(rows, new_tokens)]
        return Generated(texts, prompt_tokens, new_tokens, time.perf_counter() - t0)

    def generated_length(self, row: list[int]) -> int:
        """New tokens up to and including the first end-of-sequence token (the rest is padding)."""
        for i, token in enumerate(row):
            if token in self.eos_ids:
                return i + 1
        return len(row)
