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
from perank.ranking.options import check_options, suggest
from perank.types import InputError

_REGISTRY: dict[str, type[BaseReranker]] = {}


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
    accepted, _ = check_options(name, _REGISTRY[name], kwargs)
    reranker = _REGISTRY[name](**accepted)
    reranker.options = MappingProxyType(dict(accepted))
    return reranker


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
    return check_options(name, cls, options, passthrough)
