"""Scoring with a causal LM: next-token logits, one greedy token, and continuation log-likelihoods, batched.

The prompt-based rankers (pointwise yes/no and query likelihood, pairwise, setwise) need only these few reads
of a decoder-only LM, always over a batch of prompts of different lengths:

- :meth:`LMScorer.next_token_logits`: the logits at the last real position (prompts are left-padded, with
  position ids counted from each prompt's first real token, so padding changes nothing but rounding),
  optionally restricted to some candidate token ids (``Yes``/``No``);
- :meth:`LMScorer.greedy_next_tokens`: the token ``generate(max_new_tokens=1, do_sample=False)`` produces,
  through ``generate`` itself so that the model's own generation config (e.g. a repetition penalty) applies as it
  does for llm-rankers, which reads the answer of its pairwise/setwise prompts that way;
- :meth:`LMScorer.continuation_logprobs`: ``sum log p(continuation | prompt)`` (query likelihood).

:meth:`LMScorer.render` wraps a user message in the tokenizer's chat template when it has one (as llm-rankers
does for decoder-only models), and :meth:`LMScorer.truncate` cuts a text to a number of tokens the way
llm-rankers does (tokens, then back to a string).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from perank.backends.runtime import eval_mode


class LMScorer:
    """A causal LM and its tokenizer, read in batches; holds no state beyond the two.

    ``add_special_tokens`` is how rendered prompts are tokenized: llm-rankers calls the tokenizer with its
    defaults on the chat-rendered text (for Llama-2 tokenizers that repeats ``<s>``; SmolLM2 adds nothing).
    """

    def __init__(self, llm: nn.Module, tokenizer: Any, *, add_special_tokens: bool = True) -> None:
        self.llm = llm
        self.tokenizer = tokenizer
        self.add_special_tokens = add_special_tokens
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id
        self.pad_id = int(pad) if pad is not None else 0

    @property
    def device(self) -> torch.device:
        return next(self.llm.parameters()).device

    @property
    def model_name(self) -> str:
        return str(getattr(getattr(self.llm, "config", None), "_name_or_path", "") or type(self.llm).__name__)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def render(self, user: str, answer_prefix: str = "") -> str:
        """``user`` as one user turn of the chat template with the assistant's turn opened, then
        ``answer_prefix``; without a template, ``user`` followed by ``answer_prefix``."""
        if not self.has_chat_template:
            return user + answer_prefix
        text = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
        )
        return str(text) + answer_prefix

    def encode(self, text: str, *, special: bool | None = None) -> list[int]:
        """Token ids of ``text`` (special tokens added by the tokenizer when ``special``, default: the
        scorer's ``add_special_tokens``)."""
        add = self.add_special_tokens if special is None else special
        return list(self.tokenizer(text, add_special_tokens=add)["input_ids"])

    def token_id(self, text: str) -> int:
        """The first token of ``text`` (llm-rankers' ``encode("Yes", add_special_tokens=False)[0]``)."""
        ids = self.encode(text, special=False)
        if not ids:
            raise ValueError(f"the tokenizer turns {text!r} into no token")
        return ids[0]

    def decode_token(self, token_id: int) -> str:
        return str(self.tokenizer.decode([int(token_id)], skip_special_tokens=True))

    def truncate(self, text: str, max_tokens: int | None) -> tuple[str, bool]:
        """``(text cut to max_tokens tokens, whether it was cut)``; ``None`` keeps every token."""
        if max_tokens is None:
            return text, False
        tokens = self.tokenizer.tokenize(text)
        if len(tokens) <= max_tokens:
            return text, False
        return str(self.tokenizer.convert_tokens_to_string(tokens[:max_tokens])), True

    def pad_left(self, rows: Sequence[Sequence[int]]) -> dict[str, Tensor]:
        """``input_ids``, ``attention_mask`` and ``position_ids`` for left-padded ``rows``."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, row in enumerate(rows):
            if row:
                ids[b, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
                mask[b, width - len(row) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return {
            "input_ids": ids.to(self.device),
            "attention_mask": mask.to(self.device),
            "position_ids": positions.to(self.device),
        }

    def _logits(self, batch: dict[str, Tensor], keep: int) -> Tensor:
        """Float32 logits of the last ``keep`` positions."""
        with eval_mode(self.llm), torch.inference_mode():
            out = self.llm(**batch, use_cache=False, logits_to_keep=keep)
        return out.logits[:, -keep:, :].float()

    def next_token_logits(self, rows: Sequence[Sequence[int]], candidate_ids: Sequence[int] | None = None) -> Tensor:
        """``[len(rows), V]`` logits of the token after each prompt (``[len(rows), len(candidate_ids)]`` when
        restricted), float32 on the CPU."""
        if not rows:
            return torch.zeros((0, len(candidate_ids) if candidate_ids is not None else 0))
        logits = self._logits(self.pad_left(rows), 1)[:, -1, :]
        if candidate_ids is not None:
            logits = logits[:, torch.tensor(list(candidate_ids), dtype=torch.long, device=logits.device)]
        return logits.cpu()

    def greedy_next_tokens(self, rows: Sequence[Sequence[int]]) -> list[int]:
        """The one token greedy generation gives after each prompt (``generate`` with ``max_new_tokens=1``,
        ``do_sample=False``, the model's generation config otherwise)."""
        if not rows:
            return []
        batch = self.pad_left(rows)
        with eval_mode(self.llm), torch.inference_mode():
            out = self.llm.generate(  # type: ignore[operator]
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                max_new_tokens=1,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=self.pad_id,
            )
        return [int(t) for t in out[:, -1].tolist()]

    def continuation_logprobs(
        self, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]]
    ) -> list[float]:
        """``sum log p(continuation | prompt)`` for each pair (0.0 for an empty continuation)."""
        if len(prompts) != len(continuations):
            raise ValueError(f"{len(prompts)} prompts for {len(continuations)} continuations")
        if not prompts:
            return []
        keep = max(1, max(len(c) for c in continuations))
        rows = [list(p) + list(c) for p, c in zip(prompts, continuations)]
        logprobs = torch.log_softmax(self._logits(self.pad_left(rows), keep + 1), dim=-1).cpu()
        out: list[float] = []
        for b, cont in enumerate(continuations):
            if not cont:
                out.append(0.0)
                continue
            # the logits at position t predict token t + 1: the continuation's tokens are the last len(cont)
            steps = logprobs[b, -len(cont) - 1 : -1, :]
            out.append(float(steps.gather(1, torch.tensor(list(cont)).unsqueeze(1)).sum()))
        return out
