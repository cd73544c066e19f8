"""The one registry of reranker families, which ``evaluate.py --reranker NAME`` and ``perank.Reranker`` use.

A family registers itself with ``@register("name", "alias", ...)`` on its class; the first lookup imports the
package :data:`FAMILIES_PACKAGE` (``perank.families``), which imports every family module, so the registry is
complete from then on.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from types import MappingProxyType
from typing import Any

from perank.ranking.base import BaseReranker
from perank.ranking.options import check_options, constructor_parameters, suggest
from perank.types import InputError

_REGISTRY: dict[str, type[BaseReranker]] = {}

#: the one option every family that reads queries takes beside its constructor's: the query budget in tokens
#: (``--max-query-length``), kept in :attr:`BaseReranker.query_length_override`. A family whose constructor has an
#: option of that name (FlagEmbedding's ``max_query_length`` of the decoder rerankers) gets it there instead.
QUERY_LENGTH_OPTION = "max_query_length"


def register(*names: str) -> Callable[[type[BaseReranker]], type[BaseReranker]]:
    """Class decorator: make a reranker available under one or more names (the first is its own)."""

    def wrap(cls: type[BaseReranker]) -> type[BaseReranker]:
        cls.name = names[0]
        for n in names:
            if n in _REGISTRY and _REGISTRY[n] is not cls:
                raise ValueError(f"reranker name {n!r} is taken by {_REGISTRY[n].__qualname__}")
            _REGISTRY[n] = cls
        return cls

    return wrap


#: the package whose import registers every built-in family; named, not imported, so that this core module
#: knows no family (the arrows point from the families down to the registry), as a plugin entry point would be
FAMILIES_PACKAGE = "perank.families"


def available_rerankers() -> list[str]:
    """Every registered name, aliases included (the first call imports :data:`FAMILIES_PACKAGE`, which
    registers the built-in families)."""
    importlib.import_module(FAMILIES_PACKAGE)
    return sorted(_REGISTRY)


def get_reranker_class(name: str) -> type[BaseReranker] | None:
    """The class registered under ``name`` (None when unknown), e.g. to inspect its keyword arguments."""
    available_rerankers()
    return _REGISTRY.get(name)


def build_reranker(name: str, **kwargs: Any) -> BaseReranker:
    """Instantiate a registered reranker; an unknown name lists the known ones, an option the family does not
    take or a value of the wrong type is an :class:`InputError` naming it (:mod:`perank.ranking.options`)."""
    known = available_rerankers()
    if name not in _REGISTRY:
        raise InputError(f"unknown reranker {name!r}{suggest(name, known)}; known: {', '.join(known)}")
    cls = _REGISTRY[name]
    rest, override = split_query_length(name, cls, kwargs)
    accepted, _ = check_options(name, cls, rest)
    reranker = cls(**accepted)
    if override is not None:
        reranker.query_length_override = override
        accepted[QUERY_LENGTH_OPTION] = override
    reranker.options = MappingProxyType(dict(accepted))
    return reranker


def reads_queries(cls: type[BaseReranker]) -> bool:
    """Whether the family declares a text budget (and so reads the query's text at all)."""
    return cls.text_budgets is not BaseReranker.text_budgets


def split_query_length(
    name: str, cls: type[BaseReranker], options: dict[str, Any], passthrough: Iterable[str] = ()
) -> tuple[dict[str, Any], int | None]:
    """``(the other options, the query budget override)``: :data:`QUERY_LENGTH_OPTION` taken out and checked,
    unless the family's constructor takes it itself. For a family that reads no query it is an error, or dropped
    (``None``) when it is one of ``passthrough``."""
    if QUERY_LENGTH_OPTION not in options or QUERY_LENGTH_OPTION in constructor_parameters(cls):
        return dict(options), None
    rest = dict(options)
    value = rest.pop(QUERY_LENGTH_OPTION)
    if not reads_queries(cls):
        if QUERY_LENGTH_OPTION in set(passthrough):
            return rest, None
        raise InputError(f"reranker {name!r} reads no query text, so it has no option {QUERY_LENGTH_OPTION}")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{QUERY_LENGTH_OPTION} must be a positive integer (tokens), got {value!r}")
    return rest, value


def accepted_options(
    name: str, options: dict[str, Any], passthrough: Iterable[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """``(accepted, dropped)`` options for the reranker registered as ``name``: ``passthrough`` names (options a
    caller hands to every family, such as ``--window-size``) are dropped for families that do not take them;
    any other option the family does not take, or a value of the wrong type, is an :class:`InputError`."""
    cls = get_reranker_class(name)
    if cls is None:
        known = available_rerankers()
        raise InputError(f"unknown reranker {name!r}{suggest(name, known)}; known: {', '.join(known)}")
    rest, override = split_query_length(name, cls, options, passthrough)
    accepted, dropped = check_options(name, cls, rest, passthrough)
    if override is not None:
        accepted[QUERY_LENGTH_OPTION] = override
    elif QUERY_LENGTH_OPTION in options and QUERY_LENGTH_OPTION not in rest:  # a family that reads no query
        dropped = sorted([*dropped, QUERY_LENGTH_OPTION])
    return accepted, dropped
