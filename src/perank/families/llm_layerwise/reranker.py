"""The layerwise LLM reranker (``--reranker llm-layerwise``, alias ``bge-reranker-minicpm-layerwise``).

bge-reranker-v2-minicpm-layerwise scores a pair from the hidden state after a chosen number of layers (a
"cutoff"): the shared final RMSNorm, then that layer's own ``Linear(hidden, 1)`` head, read at the last real
token (FlagEmbedding's ``LayerWiseFlagLLMReranker``; the vocabulary's 'Yes' logit is not used). Fewer layers
are faster and somewhat worse. Inputs are the yes/no family's (:mod:`perank.families.llm_yes_no.inputs`).

Ranking uses one cutoff (``cutoff_layer``, default the last layer). ``compute_score(pairs, cutoff_layers=[...])``
runs the forward pass once, up to the largest cutoff, and returns one list per layer (a flat list for one), as
FlagEmbedding does. Out-of-range cutoffs are dropped with a warning, none left is an error. Cutoffs are sorted
and deduplicated first: FlagEmbedding collects hidden states in layer order but picks heads in the order given,
so an unsorted list there pairs layers with the wrong heads.

``dtype``: FlagEmbedding forces fp16 when no precision is given; here the default is float16 on CUDA and
float32 elsewhere (CPU half precision is slow and FlagEmbedding turns it off on CPU too).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from perank.backends.runtime import parse_dtype, resolve_device
from perank.families.llm_layerwise.loading import load_layerwise
from perank.families.llm_yes_no.inputs import last_token
from perank.families.llm_yes_no.reranker import DecoderPairScorer
from perank.ranking.pointwise import Pairs, PairScores
from perank.types import InputError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "BAAI/bge-reranker-v2-minicpm-layerwise"


class LLMLayerwiseReranker(DecoderPairScorer):
    """Scores each pair with one layer's head of a layerwise MiniCPM reranker (see the module docstring)."""

    name = "llm-layerwise"

    def __init__(
        self,
        model_path: str = DEFAULT_MODEL,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 128,
        max_length: int = 512,
        max_query_length: int | None = None,
        prompt: str | None = None,
        padding_side: str = "left",
        cutoff_layer: int | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = parse_dtype(dtype) or (torch.float16 if self.device.type == "cuda" else torch.float32)
        self.model_path = str(model_path)
        self.llm, self.tokenizer = load_layerwise(
            self.model_path, device=self.device, dtype=self.dtype, trust_remote_code=trust_remote_code
        )
        self.start_layer = int(self.llm.config.start_layer)
        self.num_layers = int(self.llm.config.num_hidden_layers)
        if cutoff_layer is not None and not self.start_layer <= cutoff_layer <= self.num_layers:
            raise InputError(f"cutoff_layer {cutoff_layer}: must be between {self.start_layer} and {self.num_layers}")
        self.cutoff_layer = int(cutoff_layer) if cutoff_layer is not None else self.num_layers
        self.active_cutoffs = [self.cutoff_layer]
        self.setup_inputs(
            batch_size=batch_size,
            max_length=max_length,
            max_query_length=max_query_length,
            prompt=prompt,
            padding_side=padding_side,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "reranker": self.name,
            "model_path": self.model_path,
            "cutoff_layer": self.cutoff_layer,
            "dtype": str(self.dtype).removeprefix("torch."),
            **self.input_description(),
        }

    def check_cutoffs(self, cutoff_layers: int | Sequence[int]) -> list[int]:
        """Sorted, unique, in-range layers (out-of-range ones dropped with a warning, as FlagEmbedding does)."""
        layers = [cutoff_layers] if isinstance(cutoff_layers, int) else list(cutoff_layers)
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in layers):
            raise InputError(f"cutoff_layers {cutoff_layers!r}: expected layer numbers")
        kept = sorted({x for x in layers if self.start_layer <= x <= self.num_layers})
        dropped = sorted({x for x in layers} - set(kept))
        if dropped:
            logger.warning("cutoff layers %s are outside %d..%d: dropped", dropped, self.start_layer, self.num_layers)
        if not kept:
            raise InputError(
                f"cutoff_layers {layers}: none within this model's scored layers {self.start_layer}..{self.num_layers}"
            )
        return kept

    def batch_scores(self, batch: dict[str, Tensor]) -> list[list[float]]:
        per_layer = self.llm.layer_scores(batch["input_ids"], batch["attention_mask"], self.active_cutoffs)
        return [last_token(scores, batch["attention_mask"]).float().cpu().tolist() for scores in per_layer]

    def score_batch(self, pairs: list[tuple[str, str]]) -> PairScores:
        encoded, heads = self.scores_with_backoff(pairs)
        counts = {"truncated_passages": [1.0 if e.truncated else 0.0 for e in encoded]}
        if len(heads) > 1:  # compute_score with several cutoffs: every layer's scores travel as counts
            counts |= {f"layer_{layer}": scores for layer, scores in zip(self.active_cutoffs, heads)}
        return PairScores(scores=heads[-1], tokens=[len(e.input_ids) for e in encoded], counts=counts)

    def compute_score(
        self,
        pairs: tuple[str, str] | Sequence[tuple[str, str]],
        normalize: bool = False,
        cutoff_layers: int | Sequence[int] | None = None,
    ) -> list[float] | list[list[float]]:
        """FlagEmbedding's ``compute_score``: one list of scores per cutoff layer, or a flat list for one."""
        layers = self.check_cutoffs(cutoff_layers) if cutoff_layers is not None else [self.cutoff_layer]
        if len(layers) == 1:
            previous, self.active_cutoffs = self.active_cutoffs, layers
            try:
                return super().compute_score(pairs, normalize=normalize)
            finally:
                self.active_cutoffs = previous
        items = self.fitted_pairs(pairs)
        if not items:
            return [[] for _ in layers]
        previous, self.active_cutoffs = self.active_cutoffs, layers
        try:
            out = self._checked(self.score_pairs(Pairs.from_tuples(items)), len(items), "compute_score")
        finally:
            self.active_cutoffs = previous
        per_layer = [out.counts[f"layer_{layer}"] for layer in layers]
        return [self.normalize_scores(s) if normalize else s for s in per_layer]
