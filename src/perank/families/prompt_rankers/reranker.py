"""The three prompt rankers of llm-rankers (ielab), each a policy (:mod:`.prompts`) over a strategy of
:mod:`perank.ranking` and the backend :class:`perank.backends.lm.LanguageModel` (:mod:`.common`):

``llm-pointwise``: each passage scored on its own by an LLM, llm-rankers' yes/no or query likelihood.

- ``yes_no``: the prompt of :data:`~perank.families.prompt_rankers.prompts.POINTWISE_YES_NO`; the score is
  P(Yes) of the softmax over the logits of the ``Yes`` and ``No`` tokens (their first token each) at the next
  position.
- ``qlm``: the prompt of :data:`~perank.families.prompt_rankers.prompts.POINTWISE_QLM`; the score is the sum of
  log p(query token | prompt, previous query tokens), the query tokenized without special tokens.

llm-rankers runs these on T5 only (the passage prompt as encoder input, the answer from the decoder). For a
decoder-only LLM this family renders the prompt as one user turn of the chat template with the assistant turn
opened (as llm-rankers does for its decoder-only pairwise and setwise prompts), so the answer (``Yes``/``No``,
or the query) is the assistant's first words; without a chat template the prompt text is used as is.
``compute_score(normalize=True)`` gives P(Yes) itself (yes_no) or p(query | passage) = exp(score) (qlm).

``llm-pairwise``: llm-rankers' pairwise prompting ("Passage A or Passage B?") with any chat causal LM.

The prompt is :data:`~perank.families.prompt_rankers.prompts.PAIRWISE`; the answer is read as llm-rankers reads
it from a decoder-only LLM (:meth:`~perank.families.prompt_rankers.common.PromptLM.greedy_picks`: chat user
turn + ``" Passage:"``, one greedy token, ``A`` or ``B`` after strip/upper, anything else names neither). That
greedy token comes from ``generate`` itself, not from an argmax restricted to the two label tokens: the two
differ whenever the model's most likely token is another one (then llm-rankers counts no preference).
The sorting (``allpair``, ``heapsort``, ``bubblesort``, both-orders rule, top ``k``) is
:mod:`perank.ranking.pairwise`. Passages are cut to ``max_passage_tokens`` tokens first, as llm-rankers does.

``llm-setwise``: llm-rankers' setwise prompting ("which passage is the most relevant?") with a chat causal LM.

The prompt is built by :func:`~perank.families.prompt_rankers.prompts.setwise_prompt` (labels ``A``-``W``); the
answer is read as llm-rankers reads it from a decoder-only LLM (``scoring="generation"``): chat user turn +
``" Passage:"``, one greedy token from ``generate``, a label after strip/upper; an answer naming no label of the
set picks the first passage, as there. The sorting (``heapsort`` with ``num_child`` children per prompt,
``bubblesort`` with windows of ``num_child + 1``, top ``k``) is :mod:`perank.ranking.setwise`. llm-rankers'
``likelihood`` scoring (T5 only) and ``num_permutation`` voting are not offered.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from perank.backends.lm import LanguageModel
from perank.families.prompt_rankers.common import DEFAULT_MAX_PASSAGE_TOKENS, PromptLM
from perank.families.prompt_rankers.prompts import NO, YES, pairwise_prompt, qlm_prompt, setwise_prompt, yes_no_prompt
from perank.ranking.choices import Choice, Picks, check_method, check_positive
from perank.ranking.pairwise import PairwiseReranker
from perank.ranking.pointwise import PairScores, PointwiseReranker
from perank.ranking.setwise import SetwiseReranker
from perank.types import Request

POINTWISE_METHODS = ("yes_no", "qlm")


class LLMPointwiseReranker(PromptLM, PointwiseReranker):
    """Pointwise LLM reranking (llm-rankers' ``pointwise``).

    Arguments: ``method`` (``yes_no`` or ``qlm``), ``model_path`` (causal LM name, alias or folder; default
    ``smollm2``), ``lm`` (a loaded ``LanguageModel``), ``device``, ``dtype``, ``batch_size`` (pairs per
    forward pass), ``max_passage_tokens`` (passages cut to this many tokens; None keeps all).

    Per-query stats: ``latency_s``, ``llm_calls`` (one prompt per passage), ``tokens_processed`` (prompt tokens,
    plus the query tokens scored by ``qlm``), ``tokens_generated`` (0), ``truncated_passages``.
    """

    name = "llm-pointwise"

    def __init__(
        self,
        method: str = "yes_no",
        *,
        model_path: str | None = None,
        lm: LanguageModel | None = None,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        batch_size: int = 16,
        max_passage_tokens: int | None = DEFAULT_MAX_PASSAGE_TOKENS,
        trust_remote_code: bool = False,
    ) -> None:
        self.method = check_method(method, POINTWISE_METHODS)
        self.batch_size = check_positive("batch_size", batch_size)
        self.setup_lm(model_path, lm, device, dtype, max_passage_tokens, trust_remote_code)
        self.label_ids = (self.lm.token_id(YES), self.lm.token_id(NO))

    def describe(self) -> dict[str, Any]:
        return {"reranker": self.name, "method": self.method, "batch_size": self.batch_size, **self.lm_settings()}

    def score_batch(self, pairs: list[tuple[str, str]]) -> PairScores:
        cut = [self.cut(passage) for _, passage in pairs]
        truncated = [float(was_cut) for _, was_cut in cut]
        calls = [1.0] * len(pairs)
        if self.method == "yes_no":
            rows = [self.lm.encode(self.lm.render(yes_no_prompt(q, t))) for (q, _), (t, _) in zip(pairs, cut)]
            logits = self.lm.next_token_logits(rows, self.label_ids)
            scores = torch.softmax(logits, dim=-1)[:, 0].tolist()
            tokens = [len(r) for r in rows]
        else:
            rows = [self.lm.encode(self.lm.render(qlm_prompt(t))) for t, _ in cut]
            queries = [self.lm.encode(q, special=False) for q, _ in pairs]
            scores = self.lm.loglik(rows, queries)
            tokens = [len(r) + len(q) for r, q in zip(rows, queries)]
        return PairScores(
            scores=[float(s) for s in scores],
            tokens=tokens,
            counts={"truncated_passages": truncated, "llm_calls": calls},
        )

    def normalize_scores(self, scores: list[float]) -> list[float]:
        """Scores in [0, 1]: P(Yes) as it is (yes_no), the query's probability exp(score) (qlm)."""
        return list(scores) if self.method == "yes_no" else [math.exp(s) for s in scores]


class LLMPairwiseReranker(PromptLM, PairwiseReranker):
    """Pairwise LLM reranking (llm-rankers' ``pairwise``).

    Arguments: ``method`` (``allpair``, ``heapsort`` or ``bubblesort``), ``k`` (the top k the sorts order),
    ``model_path`` (default ``smollm2``), ``lm``, ``device``, ``dtype``, ``batch_size`` (prompts
    per model call), ``max_passage_tokens``. Stats: see :mod:`perank.ranking.choices`.
    """

    name = "llm-pairwise"

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


class LLMSetwiseReranker(PromptLM, SetwiseReranker):
    """Setwise LLM reranking (llm-rankers' ``setwise``).

    Arguments: ``method`` (``heapsort`` or ``bubblesort``), ``num_child`` (c: children per heap node, window
    c + 1 for bubblesort), ``k`` (the top k sorted), ``model_path`` (default ``smollm2``), ``lm``,
    ``device``, ``dtype``, ``batch_size`` (prompts per model call), ``max_passage_tokens``. Stats: see
    :mod:`perank.ranking.choices`.
    """

    name = "llm-setwise"

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
