"""``--reranker colbert``: late interaction (MaxSim over per-token vectors), as bge-m3's ColBERT score.

Scores match FlagEmbedding's ``BGEM3FlagModel`` README path (``encode_queries`` / ``encode_corpus`` then
``colbert_score``), and its ``compute_score(...)["colbert"]`` wherever that one's zero padding does not floor a
max (see :mod:`.scoring`). Lengths are bge-m3's defaults: queries and passages each cut to 512 tokens
(``query_max_length``, ``max_length`` = FlagEmbedding's ``passage_max_length``; special tokens included).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from perank.backends.runtime import default_dtype, eval_mode, parse_dtype, resolve_device
from perank.datasets import REPO_ROOT
from perank.families.colbert.model import ColbertModel, load_colbert
from perank.families.colbert.scoring import score_query
from perank.ranking.budgets import TextBudgets, TokenBudget, special_tokens
from perank.ranking.pointwise import Pairs, PairScores, PointwiseReranker
from perank.types import InputError

#: the small model trained here (recipes/colbert/train_small.sh), used when no model_path is given
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "colbert-minilm"
#: bge-m3's BGEM3FlagModel defaults (query_max_length, passage_max_length)
QUERY_MAX_LENGTH = 512
PASSAGE_MAX_LENGTH = 512


def default_model_path(model_path: str | None) -> str:
    """``model_path`` (a local folder as its absolute path), else the small trained model, else an error."""
    if model_path:
        local = Path(model_path).expanduser()
        return str(local.resolve()) if local.exists() else model_path
    if DEFAULT_CHECKPOINT.is_dir():
        return str(DEFAULT_CHECKPOINT)
    raise InputError(
        f"no model_path given and the default ColBERT model {DEFAULT_CHECKPOINT} does not exist; train it with "
        "recipes/colbert/train_small.sh, or pass a model path (BAAI/bge-m3, a folder with colbert_linear.pt, "
        "or a plain encoder such as all-minilm-l6-v2 for zero-shot MaxSim)"
    )


def _positive_int(name: str, value: int, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InputError(f"option {name}={value!r}: must be an integer of at least {least}")
    return value


class ColbertReranker(PointwiseReranker):
    """Scores each pair by bge-m3's MaxSim; each distinct query and passage is encoded once per call.

    Options: ``model_path`` (a bge-m3-style folder or hub id, or a plain encoder with an identity projection;
    default :data:`DEFAULT_CHECKPOINT`), ``device``, ``dtype`` (float32 on CPU; float16/bfloat16 allowed on
    CUDA, default bf16 there), ``batch_size`` (texts per encoder call, and passages per MaxSim block),
    ``max_length`` / ``query_max_length`` (tokens per passage / query), ``embedding_cache`` (a SQLite file of
    :class:`~perank.backends.embedding_cache.EmbeddingCache`: passage token vectors are looked up there first
    and stored after encoding, keyed by the weights and every setting that changes them), ``trust_remote_code``.

    Per-query stats (from the core): ``tokens_processed`` (the query's tokens plus each passage's, after
    truncation, whether or not its vectors came from the cache), ``truncated_passages``, ``truncated_queries`` (a
    query over its budget, counted by the core: :mod:`perank.ranking.budgets`).
    """

    name = "colbert"

    def __init__(
        self,
        model_path: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 64,
        max_length: int = PASSAGE_MAX_LENGTH,
        query_max_length: int = QUERY_MAX_LENGTH,
        embedding_cache: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        self.batch_size = _positive_int("batch_size", batch_size)
        self.max_length = _positive_int("max_length", max_length, 2)
        self.query_max_length = _positive_int("query_max_length", query_max_length, 2)
        target = resolve_device(device)
        torch_dtype = parse_dtype(dtype) or default_dtype(target)
        if target.type == "cpu" and torch_dtype != torch.float32:
            raise InputError(f"option dtype={dtype}: ColBERT runs in float32 on CPU (half precision is for CUDA)")
        self.model_path = default_model_path(model_path)
        self.model: ColbertModel = load_colbert(
            self.model_path, device=target, dtype=torch_dtype, trust_remote_code=trust_remote_code
        )
        limit = self.model.max_tokens
        for name in ("max_length", "query_max_length"):
            if limit is not None and getattr(self, name) > limit:
                raise InputError(f"option {name}={getattr(self, name)}: {self.model_path} takes at most {limit} tokens")
        self.cache: Any = None
        self.cache_prefix = ""
        if embedding_cache:
            from perank.backends.embedding_cache import EmbeddingCache

            self.cache = EmbeddingCache(embedding_cache)
            self.cache_prefix = (
                f"colbert|{self.model_path}|weights={self.model.fingerprint()}|max_length={self.max_length}"
                f"|dtype={str(torch_dtype).removeprefix('torch.')}"
            )

    def describe(self) -> dict[str, Any]:
        return {
            "reranker": self.name,
            "model_path": self.model_path,
            "projection": self.model.projection,
            "dim": self.model.dim,
            "query_max_length": self.query_max_length,
            "max_length": self.max_length,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "batch_size": self.batch_size,
            "embedding_cache": str(self.cache.path) if self.cache is not None else None,
        }

    def text_budgets(self) -> TextBudgets:
        """bge-m3's lengths less the special tokens: ``query_max_length`` (512) and ``max_length`` (512)."""
        tokenizer = self.model.tokenizer
        specials = special_tokens(tokenizer)
        return TextBudgets(
            query=TokenBudget(tokenizer, max(1, self.query_max_length - specials), truncated_by_model=True),
            passage=TokenBudget(tokenizer, max(1, self.max_length - specials), truncated_by_model=True),
        )

    def _passage_vectors(self, texts: list[str]) -> dict[str, Tensor]:
        """Token vectors of each distinct passage: cached ones read, the rest encoded (and stored)."""
        cached = self.cache.get_many(self.cache_prefix, texts, matrix=True) if self.cache is not None else []
        found = {t: torch.from_numpy(v) for t, v in zip(texts, cached) if v is not None}
        missing = [t for t in texts if t not in found]
        if missing:
            fresh = self.model.encode(missing, self.max_length, self.batch_size)
            if self.cache is not None:
                self.cache.put_many(self.cache_prefix, missing, fresh, matrix=True)
            found.update(zip(missing, fresh))
        return found

    def score_pairs(self, pairs: Pairs) -> PairScores:
        """MaxSim of every pair; distinct queries and passages are each encoded (or read from the cache) once."""
        queries = list(dict.fromkeys(pairs.queries))
        asked = list(dict.fromkeys(pairs.queries[qi] for qi in pairs.query_of))  # queries with passages
        passages = list(dict.fromkeys(pairs.passages))
        with eval_mode(self.model), torch.inference_mode():
            q_vectors = dict(zip(asked, self.model.encode(asked, self.query_max_length, self.batch_size)))
            p_vectors = self._passage_vectors(passages)
            groups: dict[str, list[int]] = {}
            for j, qi in enumerate(pairs.query_of):
                groups.setdefault(pairs.queries[qi], []).append(j)
            scores = [0.0] * len(pairs)
            device = self.model.device
            for query, idx in groups.items():
                block = [p_vectors[pairs.passages[j]] for j in idx]
                for j, score in zip(idx, score_query(q_vectors[query].to(device), block, self.batch_size)):
                    scores[j] = score
        p_tokens, p_cut = self.model.token_counts(passages, self.max_length)
        q_tokens, _ = self.model.token_counts(queries, self.query_max_length)
        p_info = {t: (n, cut) for t, n, cut in zip(passages, p_tokens, p_cut)}
        q_count = dict(zip(queries, q_tokens))
        return PairScores(
            scores=scores,
            tokens=[p_info[p][0] for p in pairs.passages],
            query_tokens=[q_count[q] for q in pairs.queries],
            counts={"truncated_passages": [int(p_info[p][1]) for p in pairs.passages]},
        )
