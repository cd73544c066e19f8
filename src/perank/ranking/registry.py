"""The one registry of reranker families, which ``evaluate.py --reranker NAME`` and ``perank.Reranker`` use.

A family registers itself with ``@register("name", "alias", ...)`` on its class; importing
:mod:`perank.families` imports every family module, so the registry is complete after the first lookup.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from perank.ranking.base import BaseReranker
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


def available_rerankers() -> list[str]:
    """Every registered name, aliases included (importing the families registers them)."""
    import perank.families  # noqa: F401  (registers the built-in families)

    return sorted(_REGISTRY)


def get_reranker_class(name: str) -> type[BaseReranker] | None:
    """The class registered under ``name`` (None when unknown), e.g. to inspect its keyword arguments."""
    available_rerankers()
    return _REGISTRY.get(name)


def build_reranker(name: str, **kwargs: Any) -> BaseReranker:
    """Instantiate a registered reranker; an unknown name lists the known ones."""
    known = available_rerankers()
    if name not in _REGISTRY:
        raise InputError(f"unknown reranker {name!r}; known: {', '.join(known)}")
    return _REGISTRY[name](**kwargs)


def accepted_options(name: str, options: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``(accepted, dropped)``: the options the reranker registered as ``name`` declares in its constructor,
    and the names of those it does not (a constructor with ``**kwargs`` accepts everything)."""
    cls = get_reranker_class(name)
    if cls is None:
        return dict(options), []
    params = inspect.signature(cls).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return dict(options), []
    names = {p.name for p in params}
    return {k: v for k, v in options.items() if k in names}, sorted(set(options) - names)
