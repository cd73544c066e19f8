"""The reranker interface every family implements, and :func:`reorder`, the one way to build a result.

A family takes a *batch* of requests so that it can batch across queries; the pipeline decides the batch
size and handles resuming, writing and scoring. Most families do not subclass :class:`BaseReranker`
directly but one of the strategies beside it: :class:`perank.ranking.pointwise.PointwiseReranker` (score
each query-passage pair) or :class:`perank.ranking.sliding_window.WindowReranker` (rank sliding windows).

:meth:`BaseReranker.rerank` is the one entry point, and it does what every family needs before its model runs:
it checks the requests (:mod:`perank.ranking.inputs`: a ``None`` or a number where a text belongs is an
:class:`~perank.types.InputError` naming its position), fits each query and passage to the family's budgets
(:mod:`perank.ranking.budgets`), hands the batch to the strategy's :meth:`BaseReranker.rerank_within_budget`,
and gives the results back with the user's own query and passage texts and ``truncated_queries`` counted.
"""

from __future__ import annotations

import functools
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from perank.ranking.budgets import TextBudgets, TokenBudget
from perank.ranking.inputs import check_requests, make_request
from perank.types import Candidate, Query, Request, Result

#: the one option every family that reads queries takes beside its constructor's: the query budget in tokens
#: (``--max-query-length``), kept in :attr:`BaseReranker.query_length_override`. A family whose constructor has an
#: option of that name (FlagEmbedding's ``max_query_length`` of the decoder rerankers) gets it there instead.
QUERY_LENGTH_OPTION = "max_query_length"


def _records_options(init: Callable[..., None]) -> Callable[..., None]:
    """``init`` wrapped to record the arguments it is given (see :attr:`BaseReranker.options`) and to take
    :data:`QUERY_LENGTH_OPTION` off them when ``init`` does not take it itself.

    The outermost ``__init__`` of a construction records; those it reaches through ``super().__init__`` do not, so
    a subclass's own arguments are what is recorded."""
    signature = inspect.signature(init)
    takes_query_length = QUERY_LENGTH_OPTION in signature.parameters
    names = list(signature.parameters)

    @functools.wraps(init)
    def __init__(self: BaseReranker, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        if "_given_options" in self.__dict__:  # reached through super().__init__: the outer call recorded
            init(self, *args, **kwargs)
            return
        override = None if takes_query_length else kwargs.pop(QUERY_LENGTH_OPTION, None)
        given: dict[str, Any] = {}
        for key, value in signature.bind(self, *args, **kwargs).arguments.items():
            kind = signature.parameters[key].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                given.update(value)
            elif kind is not inspect.Parameter.VAR_POSITIONAL and key != names[0]:  # names[0]: self
                given[key] = value
        if override is not None:
            given[QUERY_LENGTH_OPTION] = override
        self._given_options = given
        init(self, *args, **kwargs)
        if override is not None:
            self.query_length_override = override

    __init__._records_options = True  # type: ignore[attr-defined]
    return __init__


class BaseReranker(ABC):
    """Reorders the candidates of each request; returned scores must strictly decrease.

    Every subclass's constructor records the arguments it was given (:attr:`options`), however it is called:
    ``DenseReranker(model_path=...)``, ``perank.Reranker("dense", model_path=...)`` and ``evaluate.py --reranker
    dense --model-path ...`` build rerankers of one identity (:class:`perank.runs.RunIdentity`). Every constructor
    also takes ``max_query_length`` (:data:`QUERY_LENGTH_OPTION`), checked by the registry."""

    #: the reranker's own name, the one its family's manifest registers it under (aliases aside)
    name: str = ""
    #: ``--max-query-length`` (option ``max_query_length``): the query budget in tokens, replacing the family's
    #: default from :meth:`text_budgets`; given to the constructor
    query_length_override: int | None = None
    #: ``describe()`` keys that do not change the ranking (speed, memory, caching); every other key is part of a
    #: run's identity, so an old run is never rescored for a command with other settings
    volatile_settings: frozenset[str] = frozenset(
        {
            "batch_size",
            "encode_batch_size",
            "reuse_prefix",
            "embedding_cache",
            "device",
            "run_label",
            "trust_remote_code",
        }
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not getattr(cls.__init__, "_records_options", False):  # its own __init__, or a mixin's
            cls.__init__ = _records_options(cls.__init__)  # type: ignore[method-assign]

    @property
    def options(self) -> Mapping[str, Any]:
        """The arguments this instance's constructor was given, by name (defaults left out): a run's file name
        carries those that change the ranking (:class:`perank.runs.RunIdentity`)."""
        return MappingProxyType(dict(self.__dict__.get("_given_options", {})))

    @abstractmethod
    def rerank_within_budget(self, requests: list[Request]) -> list[Result]:
        """Rerank a batch of checked requests whose queries and passages are within :meth:`text_budgets`, one
        result per request, in the same order. Strategies implement this; callers use :meth:`rerank`."""

    def text_budgets(self) -> TextBudgets:
        """How much of a query and of a passage the family reads, in tokens of its own tokenizer (see
        :mod:`perank.ranking.budgets`). The default reads neither: a family that never tokenizes text (the
        first stage's order, its scores) needs no budget."""
        return TextBudgets()

    def budgets(self) -> TextBudgets:
        """:meth:`text_budgets` with ``--max-query-length`` applied: the core then cuts the query to that many
        tokens. It can lower, not raise, a budget that the family's model enforces itself (``truncated_by_model``:
        raise that with the family's own option, e.g. the cross-encoder's ``query_max_length``); it does not
        apply to a family that reads no query (the registry refuses it there)."""
        budgets = self.text_budgets()
        override, query = self.query_length_override, budgets.query
        if override is None or query is None or (query.truncated_by_model and override >= query.max_tokens):
            return budgets
        return replace(budgets, query=TokenBudget(query.tokenizer, override))

    def rerank(self, requests: list[Request]) -> list[Result]:
        """Rerank a batch of requests, one result per request, in the same order (see the module docstring)."""
        check_requests(requests)
        budgets = self.budgets()
        fitted: list[Request] = []
        cut: list[tuple[bool, int]] = []  # per request: query cut, passages cut by the core
        for request in requests:
            query, query_cut = fit_query(request.query.text, budgets.query)
            passages = [fit_passage(c.text, budgets.passage) for c in request.candidates]
            candidates = [replace(c, text=text) for c, (text, _) in zip(request.candidates, passages)]
            fitted.append(Request(query=Query(qid=request.query.qid, text=query), candidates=candidates))
            cut.append((query_cut, sum(was_cut for _, was_cut in passages)))
        results = self.rerank_within_budget(fitted)
        if len(results) != len(requests):
            raise ValueError(f"{type(self).__name__} returned {len(results)} results for {len(requests)} requests")
        for request, result, (query_cut, passages_cut) in zip(requests, results, cut):
            texts = {c.docid: c.text for c in request.candidates}
            result.query = request.query  # the user's own texts, whatever the model read
            for cand in result.candidates:
                cand.text = texts.get(cand.docid, cand.text)
            result.stats["truncated_queries"] = int(query_cut)
            if passages_cut:  # a family that also cuts by itself counted at least these (its cut is the tighter)
                result.stats["truncated_passages"] = max(int(result.stats.get("truncated_passages", 0)), passages_cut)
        return results

    def describe(self) -> dict[str, Any]:
        """Settings worth recording beside a run (model ids, window size, ...)."""
        return {"reranker": self.name}

    def rank(self, query: str | Query, docs: Sequence[str | Candidate], qid: str = "q") -> Result:
        """Rank one query's documents: ``docs`` are texts (ids ``"0"``, ``"1"``, ... in input order) or
        :class:`Candidate` objects; the result holds them best first, each with its score and new rank."""
        return self.rerank([make_request(query, docs, qid)])[0]


def fit_query(text: str, budget: TokenBudget | None) -> tuple[str, bool]:
    """The query as a family with ``budget`` reads it, and whether it was cut (unchanged without a budget)."""
    return (text, False) if budget is None else budget.fit(text)


def fit_passage(text: str, budget: TokenBudget | None) -> tuple[str, bool]:
    """The passage as a family with ``budget`` reads it, and whether the core cut it: pre-cut only when the
    family's model truncates by itself (the family counts those), else cut to the budget."""
    if budget is None:
        return text, False
    if budget.truncated_by_model:
        return budget.precut(text), False
    return budget.cut(text)


def reorder(request: Request, order: list[int], scores: list[float], stats: dict[str, Any] | None = None) -> Result:
    """Build a result from a permutation of the request's candidates and one score per position.

    ``order[k]`` is the index (into ``request.candidates``) of the candidate ranked k-th. Checks that the
    order is a permutation, so a bug in a ranker cannot silently drop or duplicate a passage.
    """
    n = len(request.candidates)
    if sorted(order) != list(range(n)):
        raise ValueError(f"query {request.query.qid}: ranking is not a permutation of {n} candidates")
    if len(scores) != n:
        raise ValueError(f"query {request.query.qid}: {len(scores)} scores for {n} candidates")
    bad = [s for s in scores if not math.isfinite(s)]
    if bad:  # never written: a NaN would sort anywhere in trec_eval
        raise ValueError(f"query {request.query.qid}: the reranker produced a non-finite score ({bad[0]})")
    from perank.io import strictly_decreasing

    fixed = strictly_decreasing(list(scores))
    cands = [
        Candidate(docid=request.candidates[i].docid, text=request.candidates[i].text, score=s, rank=r)
        for r, (i, s) in enumerate(zip(order, fixed), start=1)
    ]
    return Result(query=request.query, candidates=cands, stats=dict(stats or {}))
