"""The pointwise strategy: score every query-passage pair on its own, then sort.

Bi-encoders, cross-encoders, yes/no LLM scorers and late-interaction models differ only in how they score
a pair; everything around that is done here once: flattening a batch of requests into pairs, batching pairs
by length so that padding costs little (as FlagEmbedding does), checking that every score is finite,
sorting (ties keep the first-stage order), accounting and :func:`~perank.ranking.base.reorder`.

A family implements ONE of two hooks:

- :meth:`PointwiseReranker.score_batch` (the usual one): scores for a list of ``(query, passage)`` pairs,
  called on length-sorted batches of ``batch_size`` pairs;
- :meth:`PointwiseReranker.score_pairs`: all pairs of a call at once, as :class:`Pairs` (each distinct
  query once plus the query index and first-stage score of each passage), for models that encode a query
  once for all its passages (bi-encoders, ColBERT) or that use the first stage's scores.

Every pointwise family also gets :meth:`PointwiseReranker.compute_score`, FlagEmbedding's convention, so a
``FlagReranker`` user can switch by changing one import.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from perank.ranking.base import BaseReranker, fit_passage, fit_query, reorder
from perank.ranking.inputs import check_pairs
from perank.types import InputError, Request, Result


@dataclass
class Pairs:
    """Query-passage pairs in factored form: ``passages[j]`` belongs to ``queries[query_of[j]]``.

    ``first_stage_scores[j]`` is the score passage j brought from the first stage (its
    :attr:`~perank.types.Candidate.score`), so that a family may use it (or combine it with its own); it is
    None for pairs that come from no first stage (:meth:`from_tuples`, i.e. ``compute_score``).
    """

    queries: list[str]
    passages: list[str]
    query_of: list[int]
    first_stage_scores: list[float] | None = None

    @classmethod
    def from_requests(cls, requests: Sequence[Request]) -> Pairs:
        return cls(
            queries=[r.query.text for r in requests],
            passages=[c.text for r in requests for c in r.candidates],
            query_of=[i for i, r in enumerate(requests) for _ in r.candidates],
            first_stage_scores=[float(c.score) for r in requests for c in r.candidates],
        )

    @classmethod
    def from_tuples(cls, pairs: Sequence[tuple[str, str]]) -> Pairs:
        """One query entry per pair (no sharing), for :meth:`PointwiseReranker.compute_score`; no first stage,
        so ``first_stage_scores`` is None."""
        return cls(queries=[q for q, _ in pairs], passages=[p for _, p in pairs], query_of=list(range(len(pairs))))

    def __len__(self) -> int:
        return len(self.passages)

    def tuples(self) -> list[tuple[str, str]]:
        return [(self.queries[q], p) for q, p in zip(self.query_of, self.passages)]

    def by_query(self) -> dict[int, list[int]]:
        """Pair indices per query index, in input order (a request's candidates, first-stage order); a query
        without passages is absent. For listwise families, whose scores depend on a query's whole list."""
        groups: dict[int, list[int]] = {}
        for j, qi in enumerate(self.query_of):
            groups.setdefault(qi, []).append(j)
        return groups


@dataclass
class PairScores:
    """What a pointwise model returns for a list of pairs.

    ``scores`` and ``tokens`` (model input tokens per pair, special tokens included, after truncation) have
    one entry per pair; ``query_tokens`` one per distinct query, for models that encode each query once;
    ``counts`` other per-pair numbers (``truncated_passages``: 1 when the pair was cut to ``max_length``)
    that are summed per query into the accounting.
    """

    scores: list[float]
    tokens: list[int] | None = None
    query_tokens: list[int] | None = None
    counts: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def concat(cls, parts: Sequence[PairScores]) -> PairScores:
        """The batches of one call, joined in order."""
        out = cls(scores=[], tokens=[] if all(p.tokens is not None for p in parts) else None)
        for part in parts:
            out.scores.extend(part.scores)
            if out.tokens is not None:
                out.tokens.extend(part.tokens or [])
            for key, values in part.counts.items():
                out.counts.setdefault(key, []).extend(values)
        return out

    def take(self, index: Sequence[int]) -> PairScores:
        """The entries at ``index`` (per pair), in that order; ``query_tokens`` is dropped."""
        return PairScores(
            scores=[self.scores[i] for i in index],
            tokens=None if self.tokens is None else [self.tokens[i] for i in index],
            counts={k: [v[i] for i in index] for k, v in self.counts.items()},
        )


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of ``batch_size``, longest first, so each batch pads to similar lengths."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


def sigmoid(x: float) -> float:
    """FlagEmbedding's ``1 / (1 + np.exp(-x))`` in float64, bit for bit (REFERENCE-families check 1:
    -5.65234375 -> 0.003497010252573502); a logit below about -709 gives 0.0, as there."""
    import numpy as np

    with np.errstate(over="ignore"):
        return float(1.0 / (1.0 + np.exp(-np.float64(x))))


class PointwiseReranker(BaseReranker):
    """A reranker that scores each pair independently; see the module docstring for the two hooks.

    Subclasses set ``batch_size`` (pairs per model call). Per-query stats: ``latency_s`` (the call's wall time
    split evenly over its queries), ``tokens_processed`` (the model's input tokens), ``tokens_generated`` (0)
    and every key of :attr:`PairScores.counts`.
    """

    batch_size: int = 32
    #: whether a pair's score depends on that pair alone, as ``compute_score`` promises; False for a family whose
    #: query vector is built from the whole candidate list (E2Rank's pseudo-query), which then refuses it
    scores_each_pair: bool = True

    def score_batch(self, pairs: list[tuple[str, str]]) -> PairScores:
        """Scores of one batch of pairs (all the same length class). Override this or :meth:`score_pairs`."""
        raise NotImplementedError(f"{type(self).__name__} implements neither score_batch nor score_pairs")

    def score_pairs(self, pairs: Pairs) -> PairScores:
        """Scores of all pairs of a call: by default :meth:`score_batch` over length-sorted batches."""
        tuples = pairs.tuples()
        batches = length_sorted_batches([len(q) + len(p) for q, p in tuples], max(1, int(self.batch_size)))
        parts = [self.score_batch([tuples[i] for i in idx]) for idx in batches]
        flat = PairScores.concat(parts)
        position = [i for idx in batches for i in idx]
        inverse = [0] * len(position)
        for k, i in enumerate(position):
            inverse[i] = k
        return flat.take(inverse)

    def normalize_scores(self, scores: list[float]) -> list[float]:
        """What ``compute_score(normalize=True)`` returns: the float64 sigmoid of each score, as FlagEmbedding."""
        return [sigmoid(float(s)) for s in scores]

    def compute_score(self, pairs: tuple[str, str] | Sequence[tuple[str, str]], normalize: bool = False) -> list[float]:
        """Scores of ``(query, passage)`` pairs as FlagEmbedding's ``compute_score`` gives them: always a list
        (one pair gives a one-element list, as FlagEmbedding does since it stopped returning a bare float);
        ``normalize=True`` maps each score through :meth:`normalize_scores` (the sigmoid, in float64)."""
        if not self.scores_each_pair:
            raise InputError(
                f"reranker {self.name!r} scores a passage against its whole candidate list, so it has no per-pair "
                "score; use rank()"
            )
        items = self.fitted_pairs(pairs)
        if not items:
            return []
        scores = self._checked(self.score_pairs(Pairs.from_tuples(items)), len(items), "compute_score").scores
        return self.normalize_scores(scores) if normalize else scores

    def fitted_pairs(self, pairs: Any) -> list[tuple[str, str]]:
        """``compute_score``'s pairs checked (an :class:`InputError` names a bad one) and fitted to the family's
        budgets, as :meth:`~perank.ranking.base.BaseReranker.rerank` fits requests."""
        budgets = self.budgets()
        return [(fit_query(q, budgets.query)[0], fit_passage(p, budgets.passage)[0]) for q, p in check_pairs(pairs)]

    def rerank_within_budget(self, requests: list[Request]) -> list[Result]:
        if not requests:
            return []
        start = time.perf_counter()
        pairs = Pairs.from_requests(requests)
        out = self._checked(self.score_pairs(pairs), len(pairs), requests) if len(pairs) else PairScores([])
        latency = (time.perf_counter() - start) / len(requests)

        results: list[Result] = []
        offset = 0
        for i, request in enumerate(requests):
            n = len(request.candidates)
            span = range(offset, offset + n)
            offset += n
            scores = [out.scores[j] for j in span]
            tokens = sum(out.tokens[j] for j in span) if out.tokens is not None else 0
            if out.query_tokens is not None:
                tokens += out.query_tokens[i]
            stats: dict[str, Any] = {"latency_s": latency, "tokens_processed": tokens, "tokens_generated": 0}
            for key, values in out.counts.items():
                stats[key] = sum(values[j] for j in span)
            order = sorted(range(n), key=lambda j: (-scores[j], j))  # ties keep first-stage order
            results.append(reorder(request, order, [scores[j] for j in order], stats))
        return results

    def _checked(self, out: PairScores, n: int, where: list[Request] | str) -> PairScores:
        """``out`` after checking it has one finite score per pair (a NaN would sort anywhere, silently)."""
        if len(out.scores) != n:
            raise ValueError(f"{type(self).__name__} returned {len(out.scores)} scores for {n} pairs")
        for j, s in enumerate(out.scores):
            if not math.isfinite(s):
                if isinstance(where, str):
                    raise ValueError(f"{self.name or type(self).__name__}: score {s} for pair {j} in {where}")
                qid = where[Pairs.from_requests(where).query_of[j]].query.qid
                raise ValueError(f"{self.name or type(self).__name__}: non-finite score {s} for query {qid}")
        return out
