"""The pointwise strategy of FlagEmbedding's decoder rerankers, shared by ``llm-yes-no`` and ``llm-layerwise``.

Both read a pair the same way (:mod:`perank.ranking.decoder_pair_inputs`), take the same options with the same
defaults (query budget ``max_length * 3 // 4``, left padding), batch and back off the same way on a GPU out of
memory, and count the same statistics. They differ only in how the token ids of a batch of pairs become scores,
which is the one hook a subclass implements: :meth:`DecoderPairScorer.row_scores` (the 'Yes' logit of a causal
LM; one layer's head of a layerwise reranker, read through the language-model handle's ``layer_scores``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from perank.backends.lm import LanguageModel
from perank.backends.padding import PADDING_SIDES
from perank.ranking.budgets import TextBudgets, TokenBudget
from perank.ranking.decoder_pair_inputs import (
    DEFAULT_PROMPT,
    QUERY_PREFIX,
    EncodedPair,
    PromptLayout,
    encode_pairs,
)
from perank.ranking.pointwise import PairScores, PointwiseReranker
from perank.types import InputError

#: the token ids of a batch of pairs -> their scores, one list per score head
RowScorer = Callable[[list[list[int]]], list[list[float]]]


class DecoderPairScorer(PointwiseReranker):
    """Scores pairs with a decoder reranker read as FlagEmbedding reads it.

    Subclasses set ``self.lm`` (the language-model handle), call :meth:`setup_inputs`, and implement
    :meth:`row_scores`.
    """

    lm: LanguageModel

    @property
    def tokenizer(self) -> Any:
        return self.lm.tokenizer

    def setup_inputs(
        self,
        *,
        batch_size: int,
        max_length: int,
        max_query_length: int | None,
        prompt: str | None,
        padding_side: str,
    ) -> None:
        """Check and store the input options (FlagEmbedding's defaults: query budget ``max_length * 3 // 4``)."""
        if batch_size < 1:
            raise InputError(f"batch_size {batch_size}: must be at least 1")
        if max_length < 1:
            raise InputError(f"max_length {max_length}: must be at least 1")
        if padding_side not in PADDING_SIDES:
            raise InputError(f"padding_side {padding_side!r}: choose left or right")
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        self.max_query_length = int(max_query_length) if max_query_length is not None else self.max_length * 3 // 4
        if self.max_query_length < 1:
            raise InputError(f"max_query_length {max_query_length}: must be at least 1")
        if prompt is not None and not prompt.strip():
            raise InputError("prompt: empty; leave it out for FlagEmbedding's default")
        self.prompt = prompt if prompt is not None else DEFAULT_PROMPT
        self.padding_side = padding_side
        self.layout = PromptLayout.from_tokenizer(self.tokenizer, self.prompt)

    def text_budgets(self) -> TextBudgets:
        """FlagEmbedding's budgets: ``max_query_length`` tokens for ``"A: " + query`` (so the query's own budget is
        that less the prefix's tokens) and ``max_length`` for a passage; its exact cut stays in
        :mod:`perank.ranking.decoder_pair_inputs`."""
        prefix = len(self.tokenizer(QUERY_PREFIX, add_special_tokens=False)["input_ids"])
        return TextBudgets(
            query=TokenBudget(self.tokenizer, max(1, self.max_query_length - prefix), truncated_by_model=True),
            passage=TokenBudget(self.tokenizer, self.max_length, truncated_by_model=True),
        )

    def input_description(self) -> dict[str, Any]:
        return {
            "max_length": self.max_length,
            "max_query_length": self.max_query_length,
            "prompt": "default" if self.prompt == DEFAULT_PROMPT else self.prompt,
            "padding_side": self.padding_side,
            "batch_size": self.batch_size,
        }

    def encode(self, pairs: list[tuple[str, str]]) -> list[EncodedPair]:
        return encode_pairs(self.tokenizer, self.layout, pairs, self.max_query_length, self.max_length)

    def row_scores(self, rows: list[list[int]]) -> list[float]:
        """The ranking score of each pair's token ids."""
        raise NotImplementedError

    def scores_with_backoff(
        self, pairs: list[tuple[str, str]], score: RowScorer
    ) -> tuple[list[EncodedPair], list[list[float]]]:
        """Encoded pairs and ``score``'s lists for them; a batch that runs out of GPU memory is split in halves
        and retried."""
        encoded = self.encode(pairs)
        try:
            with self.lm.inference(), torch.inference_mode():
                return encoded, score([e.input_ids for e in encoded])
        except torch.OutOfMemoryError:
            if len(pairs) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(pairs) // 2
            first, a = self.scores_with_backoff(pairs[:half], score)
            second, b = self.scores_with_backoff(pairs[half:], score)
            return first + second, [x + y for x, y in zip(a, b)]

    def score_batch(self, pairs: list[tuple[str, str]]) -> PairScores:
        encoded, (scores,) = self.scores_with_backoff(pairs, lambda rows: [self.row_scores(rows)])
        return PairScores(
            scores=scores,
            tokens=[len(e.input_ids) for e in encoded],
            counts={"truncated_passages": [1.0 if e.truncated else 0.0 for e in encoded]},
        )
