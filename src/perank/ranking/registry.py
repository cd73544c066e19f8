"""The reranker registry that ``evaluate.py --reranker NAME`` and ``perank.Reranker`` use.

Names are those the family manifests declare (:mod:`perank.ranking.family`), found by
:mod:`perank.ranking.catalogue` (the built-in families and installed packages' entry points); a reranker's module
is imported when it is asked for. :func:`build_reranker` (and :func:`build_with_shared_options`, which the command
line uses to drop the flags it hands every family) is where options are checked, once, for every caller: an option
the family does not take, or a value of the wrong type, is an :class:`InputError` naming it
(:mod:`perank.ranking.options`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from perank.ranking.base import QUERY_LENGTH_OPTION, BaseReranker
from perank.ranking.catalogue import catalogue
from perank.ranking.family import load_target
from perank.ranking.options import check_options, constructor_parameters, suggest
from perank.types import InputError


def available_rerankers() -> list[str]:
    """Every reranker name of every known family, aliases included (no family's code is imported to say so)."""
    return sorted(catalogue().rerankers)


def get_reranker_class(name: str) -> type[BaseReranker] | None:
    """The class registered under ``name`` (None when unknown), e.g. to inspect its keyword arguments; its module
    is imported now. A manifest whose class is no reranker, or names itself otherwise, is an error naming both."""
    found = catalogue().rerankers.get(name)
    if found is None:
        return None
    family, entry = found
    cls = load_target(entry.target)
    if not issubclass(cls, BaseReranker):
        raise TypeError(f"family {family.name!r}: reranker {entry.name!r} ({entry.target}) is not a BaseReranker")
    if cls.name != entry.name:
        raise ValueError(
            f"family {family.name!r}: the manifest names {cls.__qualname__} {entry.name!r}, the class calls itself "
            f"{cls.name!r}"
        )
    return cls


def _known_class(name: str) -> type[BaseReranker]:
    cls = get_reranker_class(name)
    if cls is None:
        known = available_rerankers()
        raise InputError(f"unknown reranker {name!r}{suggest(name, known)}; known: {', '.join(known)}")
    return cls


def build_reranker(name: str, /, **options: Any) -> BaseReranker:
    """Instantiate a registered reranker, its options checked first (the one place they are): an unknown name lists
    the known ones; an option the family does not take, or a value of the wrong type, is an :class:`InputError`.
    ``max_query_length`` is taken by every family that reads queries (see :data:`QUERY_LENGTH_OPTION`)."""
    return build_with_shared_options(name, options)[0]


def build_with_shared_options(
    name: str, options: Mapping[str, Any], shared: Iterable[str] = ()
) -> tuple[BaseReranker, list[str]]:
    """``(reranker, dropped)``: as :func:`build_reranker`, but the ``shared`` options (flags a caller hands to every
    family, such as ``--window-size``) that this family has no use for are dropped, and named in ``dropped``."""
    cls = _known_class(name)
    accepted, dropped = _checked(name, cls, dict(options), shared)
    return cls(**accepted), dropped


def accepted_options(
    name: str, options: dict[str, Any], passthrough: Iterable[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """``(accepted, dropped)`` options for the reranker registered as ``name``, checked as
    :func:`build_with_shared_options` checks them (without building it): ``passthrough`` names the family does not
    take are dropped; any other option the family does not take, or a value of the wrong type, is an
    :class:`InputError`."""
    return _checked(name, _known_class(name), options, passthrough)


def reads_queries(cls: type[BaseReranker]) -> bool:
    """Whether the family declares a text budget (and so reads the query's text at all)."""
    return cls.text_budgets is not BaseReranker.text_budgets


def _checked(
    name: str, cls: type[BaseReranker], options: dict[str, Any], passthrough: Iterable[str]
) -> tuple[dict[str, Any], list[str]]:
    """``(accepted, dropped)``: the constructor's options checked against it, and :data:`QUERY_LENGTH_OPTION`
    (unless the constructor takes it itself) checked here, for a family that reads queries."""
    if QUERY_LENGTH_OPTION not in options or QUERY_LENGTH_OPTION in constructor_parameters(cls):
        return check_options(name, cls, options, passthrough)
    rest = dict(options)
    value = rest.pop(QUERY_LENGTH_OPTION)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:  # checked even where it is then dropped
        raise InputError(f"{QUERY_LENGTH_OPTION} must be a positive integer (tokens), got {value!r}")
    accepted, dropped = check_options(name, cls, rest, passthrough)
    if not reads_queries(cls):
        if QUERY_LENGTH_OPTION in set(passthrough):
            return accepted, sorted([*dropped, QUERY_LENGTH_OPTION])
        raise InputError(f"reranker {name!r} reads no query text, so it has no option {QUERY_LENGTH_OPTION}")
    return {**accepted, QUERY_LENGTH_OPTION: value}, dropped
