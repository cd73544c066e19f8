"""The layerwise LLM reranker (``--reranker llm-layerwise``, alias ``bge-reranker-minicpm-layerwise``).

bge-reranker-v2-minicpm-layerwise scores a pair from the hidden state after a chosen number of layers (a
"cutoff"): the shared final RMSNorm, then that layer's own ``Linear(hidden, 1)`` head, read at the last real
token (FlagEmbedding's ``LayerWiseFlagLLMReranker``; the vocabulary's 'Yes' logit is not used). Fewer layers
are faster and somewhat worse. Inputs are the yes/no family's (:mod:`perank.ranking.decoder_pair_inputs`). The model
is read through the language-model handle's ``layer_scores`` (:mod:`perank.backends.layerwise_lm`, perank's own
MiniCPM forward); a handle without it (a plain causal LM) is refused by name. A model trained here
(``src/train.py --family llm-layerwise``: LoRA and one head per layer on a causal LM, :mod:`.training`) loads the
same way from its folder (:mod:`perank.backends.layer_heads`), and the prompt it was trained with is the default.

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

from perank.backends.layerwise_lm import LayerwiseLanguageModel
from perank.backends.lm import Capability, LanguageModel
from perank.backends.lm_sources import load_language_model
from perank.backends.runtime import parse_dtype, resolve_device
from perank.ranking.decoder_pair_inputs import PAD_MULTIPLE
from perank.ranking.decoder_pairs import DecoderPairScorer
from perank.ranking.pointwise import PairScores, length_sorted_batches
from perank.types import InputError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "BAAI/bge-reranker-v2-minicpm-layerwise"


class LLMLayerwiseReranker(DecoderPairScorer):
    """Scores each pair with one layer's head of a layerwise MiniCPM reranker (see the module docstring).

    ``lm`` (a loaded handle with ``layer_scores``) is used instead of loading ``model_path``.
    """

    NEEDS = frozenset({Capability.LAYER_SCORES})

    name = "llm-layerwise"

    def __init__(
        self,
        model_path: str = DEFAULT_MODEL,
        *,
        lm: LanguageModel | None = None,
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
        if lm is None:
            target = resolve_device(device)
            precision = parse_dtype(dtype) or (torch.float16 if target.type == "cuda" else torch.float32)
            lm = load_language_model(model_path, device=target, dtype=precision, trust_remote_code=trust_remote_code)
        lm.require(self.NEEDS, self.name)
        self.lm = lm
        self.model_path = lm.name
        layers = lm.scored_layers()
        self.start_layer, self.num_layers = layers.start, layers.stop - 1
        if cutoff_layer is not None and not self.start_layer <= cutoff_layer <= self.num_layers:
            raise InputError(f"cutoff_layer {cutoff_layer}: must be between {self.start_layer} and {self.num_layers}")
        self.cutoff_layer = int(cutoff_layer) if cutoff_layer is not None else self.num_layers
        if prompt is None and isinstance(lm, LayerwiseLanguageModel):
            prompt = lm.prompt  # the prompt a model trained here was trained with (None: FlagEmbedding's)
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
            "dtype": self.lm.runtime().get("dtype"),
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

    def row_scores(self, rows: list[list[int]]) -> list[float]:
        """The ranking score: :attr:`cutoff_layer`'s head."""
        return self.layer_scores(rows, [self.cutoff_layer])[0]

    def layer_scores(self, rows: list[list[int]], layers: list[int]) -> list[list[float]]:
        """Each of ``layers``' head scores of the pairs' token ids, in one pass up to the largest."""
        return self.lm.layer_scores(rows, layers, padding_side=self.padding_side, pad_to_multiple_of=PAD_MULTIPLE)

    def compute_score(
        self,
        pairs: tuple[str, str] | Sequence[tuple[str, str]],
        normalize: bool = False,
        cutoff_layers: int | Sequence[int] | None = None,
    ) -> list[float] | list[list[float]]:
        """FlagEmbedding's ``compute_score``: one list of scores per cutoff layer, or a flat list for one.

        The pairs are batched by length as ranking batches them, each batch read once up to the largest cutoff.
        """
        layers = self.check_cutoffs(cutoff_layers) if cutoff_layers is not None else [self.cutoff_layer]
        items = self.fitted_pairs(pairs)
        per_layer: list[list[float]] = [[0.0] * len(items) for _ in layers]
        for index in length_sorted_batches([len(q) + len(p) for q, p in items], self.batch_size):
            _, heads = self.scores_with_backoff([items[i] for i in index], lambda rows: self.layer_scores(rows, layers))
            for out, scores in zip(per_layer, heads):
                for i, score in zip(index, scores):
                    out[i] = score
        for scores in per_layer:
            self._checked(PairScores(scores), len(items), "compute_score")
        per_layer = [self.normalize_scores(s) if normalize else s for s in per_layer]
        return per_layer[0] if len(layers) == 1 else per_layer
