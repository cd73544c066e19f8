"""One handle on a language model: the interface every LLM family reads its model through.

Every LLM family used to load its model its own way and wrap it in a helper of its own. A
:class:`LanguageModel` is the one object they share now. It is built from a name
(:func:`~perank.backends.lm_sources.load_language_model`: a packaged alias, hub id, folder, LoRA adapter folder,
PE-Rank checkpoint or layerwise reranker checkpoint) or around objects already loaded
(:class:`perank.backends.hf_lm.HFLanguageModel`), holds the tokenizer, and says where and how it runs
(:meth:`LanguageModel.describe`).

The interface is in token ids and strings, never in a framework's tensors of the model's inside, so another
backend (vLLM, a server) can implement it without a family changing: a backend subclasses
:class:`LanguageModel`, lists its :class:`Capability` set, and overrides the reads it can do. A family declares
the capabilities it needs and calls :meth:`LanguageModel.require` when it is built, so a handle without one is
refused there by name, not deep inside the first batch; a read a backend does not override says the same.
:mod:`perank.backends.hf_lm` is the transformers backend, with ``next_token_logits``, ``loglik`` and
``generate``; :mod:`perank.backends.layerwise_lm` serves ``layer_scores`` from a layerwise MiniCPM reranker.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from perank.types import InputError

if TYPE_CHECKING:
    from torch import Tensor


class Capability(StrEnum):
    """A read of a language model that a family may need."""

    NEXT_TOKEN_LOGITS = "next_token_logits"  # logits of the token after each prompt (yes/no, labels, one token)
    LOGLIK = "loglik"  # sum log p(continuation | prompt) (query likelihood)
    GENERATE = "generate"  # batched text generation (listwise rankings written as text)
    LAYER_SCORES = "layer_scores"  # one score per cutoff layer (layerwise heads)


#: what a plain causal LM can do
CAUSAL_LM_CAPABILITIES = frozenset({Capability.NEXT_TOKEN_LOGITS, Capability.LOGLIK, Capability.GENERATE})


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


class LanguageModel:
    """A language model and its tokenizer, read in batches; holds no state beyond them.

    ``name`` is what a run records as the model (the path or alias it was loaded from). The tokenizer helpers
    (:meth:`render`, :meth:`encode`, :meth:`truncate`, ...) are shared by every backend; the reads
    (:meth:`next_token_logits`, :meth:`greedy_next_tokens`, :meth:`loglik`, :meth:`generate`) are each
    backend's, and refuse by name where the backend lacks the capability.
    """

    def __init__(self, tokenizer: Any, *, name: str, capabilities: frozenset[Capability]) -> None:
        self.tokenizer = tokenizer
        self.name = str(name)
        self.capabilities = frozenset(capabilities)

    # -- what a family may ask, and what the run records

    def require(self, needed: frozenset[Capability] | set[Capability], family: str) -> None:
        """Refuse this handle, naming ``family`` and what is missing, when it lacks a capability in ``needed``."""
        missing = sorted(c.value for c in set(needed) - self.capabilities)
        if missing:
            raise InputError(f"{family} needs {', '.join(missing)}; the language model {self.name} has none")

    def runtime(self) -> dict[str, Any]:
        """Where and how the model runs (the backend's: dtype, device, attention kernel)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """What a run records about the model: name, the backend's runtime, chat template, capabilities."""
        return {
            "model": self.name,
            **self.runtime(),
            "chat_template": self.has_chat_template,
            "capabilities": sorted(c.value for c in self.capabilities),
        }

    def inference(self) -> AbstractContextManager[Any]:
        """The context reads run in (the transformers backend: eval mode, then the model's previous mode)."""
        return nullcontext()

    def config_context_length(self) -> int | None:
        """The most positions the model's own config says it takes, if it says."""
        return None

    def context_length(self) -> int | None:
        """The most positions the model takes (its config's, else the tokenizer's ``model_max_length`` when it is
        a real number); None when neither says."""
        value = self.config_context_length()
        if value:
            return value
        limit = getattr(self.tokenizer, "model_max_length", None)
        return limit if isinstance(limit, int) and 0 < limit < 10**9 else None

    # -- the tokenizer, the same for every backend

    @property
    def pad_id(self) -> int:
        """The padding id: the tokenizer's pad token, else its end-of-sequence token, else 0."""
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        return int(pad) if pad is not None else 0

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

    def encode(self, text: str, *, special: bool = True) -> list[int]:
        """Token ids of ``text``, with the tokenizer's special tokens when ``special`` (llm-rankers calls the
        tokenizer with its defaults on the chat-rendered text: for Llama-2 that repeats ``<s>``)."""
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def token_id(self, text: str) -> int:
        """The first token of ``text`` (llm-rankers' ``encode("Yes", add_special_tokens=False)[0]``)."""
        ids = self.encode(text, special=False)
        if not ids:
            raise InputError(f"{self.name}: the tokenizer turns {text!r} into no token")
        return ids[0]

    def decode_token(self, token_id: int) -> str:
        return str(self.tokenizer.decode([int(token_id)], skip_special_tokens=True))

    def truncate(self, text: str, max_tokens: int | None) -> tuple[str, bool]:
        """``(text cut to max_tokens tokens, whether it was cut)``, as llm-rankers cuts (tokens, then back to a
        string); ``None`` keeps every token."""
        if max_tokens is None:
            return text, False
        tokens = self.tokenizer.tokenize(text)
        if len(tokens) <= max_tokens:
            return text, False
        return str(self.tokenizer.convert_tokens_to_string(tokens[:max_tokens])), True

    # -- the reads, each a backend's

    def _lacks(self, capability: Capability) -> InputError:
        return InputError(f"the language model {self.name} has no {capability.value}")

    def next_token_logits(self, rows: Sequence[Sequence[int]], candidate_ids: Sequence[int] | None = None) -> Tensor:
        """``[len(rows), V]`` float32 CPU logits of the token after each prompt of token ids
        (``[len(rows), len(candidate_ids)]`` when restricted)."""
        raise self._lacks(Capability.NEXT_TOKEN_LOGITS)

    def greedy_next_tokens(self, rows: Sequence[Sequence[int]]) -> list[int]:
        """The one token greedy generation gives after each prompt, the model's generation config otherwise."""
        raise self._lacks(Capability.NEXT_TOKEN_LOGITS)

    def loglik(self, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]]) -> list[float]:
        """``sum log p(continuation | prompt)`` for each pair of token-id lists (0.0 for an empty continuation)."""
        raise self._lacks(Capability.LOGLIK)

    def generate(
        self,
        prompts: list[str],
        max_new_tokens: int,
        *,
        sampling: Sampling | None = None,
        add_special_tokens: bool = False,
    ) -> Generated:
        """Generate for every prompt string at once. Chat-template prompts already carry their special tokens
        (``add_special_tokens=False``); a raw text prompt wants the tokenizer's (e.g. BOS)."""
        raise self._lacks(Capability.GENERATE)

    def scored_layers(self) -> range:
        """The layers :meth:`layer_scores` reads (a layerwise reranker's ``start_layer`` to its last layer)."""
        raise self._lacks(Capability.LAYER_SCORES)

    def layer_scores(
        self,
        rows: Sequence[Sequence[int]],
        layers: Sequence[int],
        *,
        padding_side: str = "left",
        pad_to_multiple_of: int = 1,
    ) -> list[list[float]]:
        """For each of ``layers`` (sorted, within :meth:`scored_layers`), that layer's head score at each row's
        last real token, in one pass up to the largest layer; the rows are padded on ``padding_side`` to a
        multiple of ``pad_to_multiple_of``, as a tokenizer pads them (FlagEmbedding's exact inputs)."""
        raise self._lacks(Capability.LAYER_SCORES)
