"""The Hugging Face backend of :class:`perank.backends.lm.LanguageModel`: a transformers causal LM in this process.

Every read is batched over prompts of different lengths, left-padded so each row's next token is the last
column, with position ids counted from each prompt's first real token (padding changes nothing but rounding):

- :meth:`HFLanguageModel.next_token_logits`: the logits at the last real position, optionally restricted to
  some candidate token ids (``Yes``/``No``);
- :meth:`HFLanguageModel.greedy_next_tokens`: the token ``generate(max_new_tokens=1, do_sample=False)``
  produces, through ``generate`` itself so that the model's own generation config (e.g. a repetition penalty)
  applies as it does for llm-rankers;
- :meth:`HFLanguageModel.loglik`: ``sum log p(continuation | prompt)`` (query likelihood);
- :meth:`HFLanguageModel.generate`: one ``generate`` call for a batch of prompt strings, greedy unless a
  sampling temperature is given (then seeded, inside a forked RNG so the caller's random state is untouched);
  each row's generated length counts the tokens up to and including its first end-of-sequence token.

:class:`LocalLanguageModel` is what every in-process backend shares (a torch module: device, dtype, eval mode);
the layerwise reranker's backend (:mod:`perank.backends.layerwise_lm`) builds on it too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor, nn

from perank.backends.lm import CAUSAL_LM_CAPABILITIES, Capability, Generated, LanguageModel, Sampling
from perank.backends.padding import pad_rows
from perank.backends.runtime import eval_mode


class LocalLanguageModel(LanguageModel):
    """A torch module in this process and its tokenizer: what every in-process backend shares (where it runs,
    in what dtype, eval mode around reads); ``attention`` is the kernel it was loaded with (None: not known, e.g.
    a model given already loaded)."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        name: str | None,
        attention: str | None,
        capabilities: frozenset[Capability],
    ) -> None:
        super().__init__(
            tokenizer,
            name=name or getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__,
            capabilities=capabilities,
        )
        self.model = model
        self.attention = attention

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def runtime(self) -> dict[str, Any]:
        return {
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "attention": self.attention,
        }

    def inference(self) -> AbstractContextManager[Any]:
        return eval_mode(self.model)

    def config_context_length(self) -> int | None:
        value = getattr(getattr(self.model, "config", None), "max_position_embeddings", None)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class HFLanguageModel(LocalLanguageModel):
    """A transformers causal LM and its tokenizer (see the module docstring for the reads)."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        name: str | None = None,
        attention: str | None = None,
        capabilities: frozenset[Capability] = CAUSAL_LM_CAPABILITIES,
    ) -> None:
        super().__init__(model, tokenizer, name=name, attention=attention, capabilities=capabilities)
        eos = model.generation_config.eos_token_id if getattr(model, "generation_config", None) else None
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids = set(eos) if isinstance(eos, list) else ({int(eos)} if eos is not None else set())

    def pad_left(self, rows: Sequence[Sequence[int]]) -> dict[str, Tensor]:
        """``input_ids``, ``attention_mask`` and ``position_ids`` for left-padded ``rows``."""
        batch = pad_rows(rows, self.pad_id, side="left")
        batch["position_ids"] = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        return {k: v.to(self.device) for k, v in batch.items()}

    def _logits(self, batch: dict[str, Tensor], keep: int) -> Tensor:
        """Float32 logits of the last ``keep`` positions."""
        with eval_mode(self.model), torch.inference_mode():
            out = self.model(**batch, use_cache=False, logits_to_keep=keep)
        return out.logits[:, -keep:, :].float()

    def next_token_logits(self, rows: Sequence[Sequence[int]], candidate_ids: Sequence[int] | None = None) -> Tensor:
        if not rows:
            return torch.zeros((0, len(candidate_ids) if candidate_ids is not None else 0))
        logits = self._logits(self.pad_left(rows), 1)[:, -1, :]
        if candidate_ids is not None:
            logits = logits[:, torch.tensor(list(candidate_ids), dtype=torch.long, device=logits.device)]
        return logits.cpu()

    def greedy_next_tokens(self, rows: Sequence[Sequence[int]]) -> list[int]:
        if not rows:
            return []
        batch = self.pad_left(rows)
        with eval_mode(self.model), torch.inference_mode():
            out = self.model.generate(  # type: ignore[operator]
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

    def loglik(self, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]]) -> list[float]:
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

    def generate(
        self,
        prompts: list[str],
        max_new_tokens: int,
        *,
        sampling: Sampling | None = None,
        add_special_tokens: bool = False,
    ) -> Generated:
        from transformers import GenerationConfig

        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
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
                out = self.model.generate(**batch, generation_config=config)  # type: ignore[operator]
            else:
                devices = [self.device] if self.device.type == "cuda" else []
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(sampling.seed)
                    out = self.model.generate(**batch, generation_config=config)  # type: ignore[operator]
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
