"""The BGE cross-encoder reranker (``--reranker cross-encoder``, alias ``bge-reranker``).

Each (query, passage) pair goes through the model together and the one-label head's logit is the score, as
FlagEmbedding's ``FlagReranker`` computes it: the same tokenisation and truncation (:mod:`.inputs`), batches
of pairs sorted by token length, fp32 unless a half precision is asked for on a GPU, the float64 sigmoid for
``compute_score(normalize=True)``, and the batch shrunk by 3/4 when the GPU runs out of memory. Passages cut
to fit ``max_length`` are counted per query (``truncated_passages``).
"""

from __future__ import annotations

from typing import Any

import torch

from perank.backends.runtime import eval_mode, parse_dtype, resolve_device
from perank.families.cross_encoder.inputs import PairTemplate, encode_pairs, pad_pairs
from perank.families.cross_encoder.model import default_model_path, load_cross_encoder
from perank.ranking.budgets import TextBudgets, TokenBudget
from perank.ranking.pointwise import Pairs, PairScores, PointwiseReranker
from perank.types import InputError


class CrossEncoderReranker(PointwiseReranker):
    """Scores each pair with a sequence-classification model's single logit (see the module docstring).

    ``query_max_length`` defaults to ``max_length * 3 // 4`` as in FlagEmbedding. ``dtype`` defaults to
    float32 (FlagEmbedding's ``use_fp16=False``); float16/bfloat16 are for CUDA only.
    """

    name = "cross-encoder"

    def __init__(
        self,
        model_path: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 128,
        max_length: int = 512,
        query_max_length: int | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = parse_dtype(dtype) or torch.float32
        if self.device.type != "cuda" and self.dtype != torch.float32:
            raise InputError(f"dtype {dtype}: half precision is for CUDA only; on {self.device.type} use float32")
        if batch_size < 1:
            raise InputError(f"batch_size {batch_size}: must be at least 1")
        if max_length < 1:
            raise InputError(f"max_length {max_length}: must be at least 1")
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        self.query_max_length = int(query_max_length) if query_max_length is not None else self.max_length * 3 // 4
        if not 0 < self.query_max_length <= self.max_length:
            raise InputError(f"query_max_length {query_max_length}: must be between 1 and max_length {max_length}")
        self.model_path = default_model_path(model_path)
        self.model, self.tokenizer = load_cross_encoder(
            self.model_path, device=self.device, dtype=self.dtype, trust_remote_code=trust_remote_code
        )
        self.template = PairTemplate.from_tokenizer(self.tokenizer)
        limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(limit, int) and limit < 10**9 and self.max_length > limit:
            raise InputError(f"max_length {max_length}: {self.model_path} takes at most {limit} tokens")

    def describe(self) -> dict[str, Any]:
        return {
            "reranker": self.name,
            "model_path": self.model_path,
            "max_length": self.max_length,
            "query_max_length": self.query_max_length,
            "dtype": str(self.dtype).removeprefix("torch."),
            "batch_size": self.batch_size,
        }

    def text_budgets(self) -> TextBudgets:
        """FlagEmbedding's own budgets: the query's ``query_max_length`` tokens (``max_length * 3 // 4``: 384), a
        passage's ``max_length`` (its exact truncation stays in :func:`.inputs.encode_pairs`)."""
        return TextBudgets(
            query=TokenBudget(self.tokenizer, self.query_max_length, truncated_by_model=True),
            passage=TokenBudget(self.tokenizer, self.max_length, truncated_by_model=True),
        )

    def score_pairs(self, pairs: Pairs) -> PairScores:
        """Tokenise every pair, run them longest first in batches, and return the scores in input order."""
        if not len(pairs):
            return PairScores(scores=[], tokens=[], counts={"truncated_passages": []})
        encoded = encode_pairs(
            self.tokenizer, self.template, pairs.tuples(), self.query_max_length, self.max_length, self.max_length
        )
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].input_ids))
        scores = [0.0] * len(encoded)
        batch_size, start = self.batch_size, 0
        with eval_mode(self.model), torch.inference_mode():
            while start < len(order):
                idx = order[start : start + batch_size]
                try:
                    logits = self._logits([encoded[i] for i in idx])
                except torch.OutOfMemoryError:
                    if batch_size == 1:
                        raise
                    batch_size = max(1, batch_size * 3 // 4)  # FlagEmbedding's back-off
                    torch.cuda.empty_cache()
                    continue
                for i, s in zip(idx, logits):
                    scores[i] = s
                start += len(idx)
        return PairScores(
            scores=scores,
            tokens=[len(e.input_ids) for e in encoded],
            counts={"truncated_passages": [1.0 if e.truncated else 0.0 for e in encoded]},
        )

    def _logits(self, batch: list[Any]) -> list[float]:
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        inputs = pad_pairs(batch, self.template, pad_id, self.tokenizer.padding_side)
        out = self.model(**{k: v.to(self.device) for k, v in inputs.items()}, return_dict=True)
        return out.logits.view(-1).float().cpu().tolist()
