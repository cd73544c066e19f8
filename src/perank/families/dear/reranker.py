"""DeAR's listwise reranker (``dear``): an LLM, usually through a LoRA adapter, writes ``[4] > [2] > ...``.

``model_path`` is a causal LM (name, alias, folder) or a PEFT LoRA adapter (a folder with
``adapter_config.json`` naming its base, e.g. what ``--family listwise-sft`` saves); the adapter is merged into
its base on loading (:func:`perank.backends.lm_sources.load_language_model`). The default is the
released ``abdoelsayed/DeAR-8B-Reranker-Listwise-LoRA-v1`` (base ``meta-llama/Llama-3.1-8B``).

Windows, batching, generation, parsing and repair counting are shared with ``listwise-text``
(:class:`perank.ranking.generative.GenerativeWindowReranker`); what is DeAR's is the prompts
(:mod:`perank.families.dear.prompts`), their numbering, reading after ``</think>``, and fitting a window into
the model's context: passages are cut to ``max_passage_tokens`` tokens when given, and when the prompt plus the
answer budget would still exceed the context (``max_length``, default the model's ``max_position_embeddings``)
the longest passages are cut further, evenly, until it fits; every passage cut either way counts in
``truncated_passages``. Decoding is greedy (reproducible); ``temperature`` > 0 samples (the repository samples at
0.5 with top-p 0.9), seeded with ``seed`` so a run can be repeated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from perank.backends.lm import LanguageModel, Sampling
from perank.backends.lm_sources import load_language_model
from perank.families.dear.prompts import PROMPTS, answer_text, card_prompt, cut_passage, first_id, repo_messages
from perank.families.dear.window_budget import fit_passages
from perank.ranking.budgets import TokenBudget
from perank.ranking.generative import GenerativeWindowReranker
from perank.ranking.parsing import parse_permutation
from perank.ranking.sliding_window import QueryState
from perank.types import InputError

DEFAULT_MODEL = "abdoelsayed/DeAR-8B-Reranker-Listwise-LoRA-v1"
#: written beside a fine-tuned adapter by ``--family listwise-sft``: the prompt variant it was trained on
SETTINGS_FILE = "dear_prompt.json"
#: answer budgets: the card's 50 tokens, RankGPT's 6n+10, the repository's 1024 for a reasoning trace
_DEFAULT_NEW_TOKENS = {"card": "50", "repo": "6n+10", "repo-cot": "1024"}


def trained_settings(model_path: str) -> dict[str, Any]:
    """What a ``listwise-sft`` output folder records about its training (``prompt``, ``max_passage_tokens``),
    so that ``dear`` reads a trained model the way it was trained; ``{}`` for other folders."""
    path = Path(model_path) / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(value, dict):
        raise InputError(f"{path}: expected a JSON object")
    settings: dict[str, Any] = {}
    if value.get("prompt") in PROMPTS:
        settings["prompt"] = value["prompt"]
    cut = value.get("max_passage_tokens")
    if isinstance(cut, int) and not isinstance(cut, bool) and cut > 0:
        settings["max_passage_tokens"] = cut
    return settings


def render_prompt(tokenizer: Any, prompt: str, query: str, passages: list[str]) -> str:
    """The text the model reads for one window of passages already cut: the card's plain text, or the
    repository's messages through the LLM's chat template with the generation prompt."""
    if prompt == "card":
        return card_prompt(query, passages)
    return tokenizer.apply_chat_template(
        repo_messages(prompt, query, passages), tokenize=False, add_generation_prompt=True
    )


class DearReranker(GenerativeWindowReranker):
    """DeAR's listwise reranking by generation (see the module docstring).

    Arguments: ``model_path`` (causal LM or LoRA adapter folder; default DeAR's released adapter),
    ``lm`` (a loaded ``LanguageModel``), ``device``, ``dtype``, ``batch_size`` (queries per generate
    batch), ``window_size``, ``step``, ``prompt`` (``card``, ``repo`` or ``repo-cot``; default: the variant a
    ``listwise-sft`` folder was trained on, else ``card``), ``max_new_tokens`` (default 50 / 6n+10 / 1024 by
    variant), ``max_passage_tokens`` (cap per passage, in tokens), ``max_length`` (context to fit, default the
    model's), ``temperature`` (0: greedy), ``top_p``, ``seed`` (sampling only).

    Per-query stats: ``latency_s``, ``tokens_processed``, ``tokens_generated``, ``windows``,
    ``windows_unchanged`` (given back in their input order: a model that copies its input),
    ``truncated_passages``, ``parse_repairs_repeated``, ``parse_repairs_out_of_range``,
    ``parse_repairs_missing`` and ``parse_fallbacks`` (answers with no usable identifier: input order kept).
    """

    name = "dear"

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
        prompt: str | None = None,
        max_new_tokens: int | None = None,
        max_passage_tokens: int | None = None,
        max_length: int | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
        trust_remote_code: bool = False,
    ) -> None:
        if prompt is not None and prompt not in PROMPTS:
            raise InputError(f"unknown prompt {prompt!r}; choose one of {', '.join(PROMPTS)}")
        for key, value in (
            ("max_new_tokens", max_new_tokens),
            ("max_passage_tokens", max_passage_tokens),
            ("max_length", max_length),
        ):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InputError(f"{key} must be a positive integer, got {value!r}")
        if not float(temperature) >= 0:
            raise InputError(f"temperature must be at least 0, got {temperature!r}")
        if not 0 < float(top_p) <= 1:
            raise InputError(f"top_p must be above 0 and at most 1, got {top_p!r}")
        self.configure_windows(batch_size, window_size, step)
        self.lm = lm or load_language_model(
            model_path or DEFAULT_MODEL, device=device, dtype=dtype, trust_remote_code=trust_remote_code
        )
        self.lm.require(self.NEEDS, self.name)
        self.model_path = self.lm.name
        trained = trained_settings(self.model_path)
        self.prompt = prompt or trained.get("prompt") or "card"
        self.raw_prompt = self.prompt == "card"
        self.max_new_tokens = max_new_tokens
        self.max_passage_tokens = max_passage_tokens or trained.get("max_passage_tokens")
        self.max_length = max_length
        self.sampling = Sampling(temperature=float(temperature), top_p=float(top_p), seed=seed)

    def describe(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "reranker": self.name,
            "model_path": self.model_path,
            "prompt_mode": self.prompt,
            "window_size": self.window_size,
            "step": self.step,
            "batch_size": self.batch_size,
            "max_new_tokens": self.max_new_tokens or _DEFAULT_NEW_TOKENS[self.prompt],
            "max_passage_tokens": self.max_passage_tokens,
            "max_length": self.max_length or self.lm.context_length(),
            "temperature": self.sampling.temperature,
            "dtype": self.lm.runtime()["dtype"],
        }
        if not self.sampling.greedy:
            settings.update(top_p=self.sampling.top_p, seed=self.sampling.seed)
        return settings

    def passage_budget(self) -> TokenBudget | None:
        """``max_passage_tokens``, else the context to fit (:meth:`_fit` cuts and counts): a pre-cut only."""
        tokens = self.max_passage_tokens or self.max_length or self.lm.context_length()
        return TokenBudget(self.tokenizer, tokens, truncated_by_model=True) if tokens else None

    def new_token_budget(self, n: int) -> int:
        if self.max_new_tokens:
            return self.max_new_tokens
        return {"card": 50, "repo": 6 * n + 10, "repo-cot": 1024}[self.prompt]

    def read_answer(self, text: str, n: int) -> tuple[list[int], dict[str, int]]:
        """The card's bracketed ids from 0; the repository's RankGPT reading from 1, after ``</think>``."""
        return parse_permutation(
            answer_text(self.prompt, text), n, first_id=first_id(self.prompt), bracketed=self.prompt == "card"
        )

    def window_prompts(self, k: int, states: list[QueryState]) -> list[str]:
        prompts = []
        for s in states:
            query = self.sanitize(s.request.query.text)
            passages = [cut_passage(self.prompt, self.sanitize(s.request.candidates[i].text)) for i in s.window(k)]
            text, truncated = self._fit(query, passages)
            s.stats["truncated_passages"] += truncated
            prompts.append(text)
        return prompts

    def _fit(self, query: str, passages: list[str]) -> tuple[str, int]:
        """The window's prompt, its passages fitted (:func:`fit_passages`) so that the prompt and the answer
        budget stay within the context; returns (prompt, passages cut)."""
        limit = self.max_length or self.lm.context_length()
        new_tokens = self.new_token_budget(len(passages))

        def measure(texts: list[str]) -> int:
            text = render_prompt(self.tokenizer, self.prompt, query, texts)
            return len(self.tokenizer(text, add_special_tokens=self.raw_prompt)["input_ids"])

        try:
            passages, cut = fit_passages(
                self.tokenizer,
                passages,
                measure,
                None if limit is None else limit - new_tokens,
                self.max_passage_tokens,
            )
        except ValueError as exc:
            raise InputError(
                f"{exc} (max_length {limit} less {new_tokens} new tokens); lower window_size or max_new_tokens"
            ) from exc
        return render_prompt(self.tokenizer, self.prompt, query, passages), cut
