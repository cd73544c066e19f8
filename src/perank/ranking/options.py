"""Checking a reranker's options against its constructor, so that no option is ever silently ignored.

An option the family does not take is an error that names it and suggests the closest accepted name
(``batch_sise`` -> ``did you mean batch_size?``). A value is checked against the constructor's type hint
(``int``, ``float``, ``bool``, ``str``, ``None``, unions, containers by their outer type, classes by
``isinstance``), so ``-o batch_size=four`` is a one-line error instead of a traceback deep in the model.

The command line forwards a few shared flags to every family (``--model-path``, ``--window-size``, ...);
those are the only options that may be dropped, for families that have no use for them, and the caller says
so on stderr (:func:`check_options` returns them as ``dropped``).
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from collections.abc import Iterable
from typing import Any

from perank.types import InputError


def constructor_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword parameters of ``cls(...)`` (``self`` and ``*args``/``**kwargs`` excluded)."""
    params = inspect.signature(cls).parameters
    return {
        name: p
        for name, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


def _hints(cls: type) -> dict[str, Any]:
    """Resolved type hints of ``cls.__init__``; an unresolvable hint is treated as ``Any`` (not checked)."""
    try:
        return typing.get_type_hints(cls.__init__)
    except (NameError, TypeError):
        return {}


def _shown(value: Any) -> str:
    """``repr(value)`` on one line (a model's repr runs to pages): its first line, cut to 60 characters."""
    text = repr(value)
    first = text.splitlines()[0] if text else text
    return first if first == text and len(text) <= 60 else first[:60] + "..."


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "None"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(hint))
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(hint, "__name__", str(hint))


def _matches(value: Any, hint: Any) -> tuple[bool, Any]:
    """``(ok, value)``: whether ``value`` fits ``hint``, and the value to use (an int is a fine float)."""
    if hint is Any or hint is inspect.Parameter.empty or hint is object:
        return True, value
    if hint is type(None) or hint is None:
        return value is None, value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            ok, converted = _matches(value, arg)
            if ok:
                return True, converted
        return False, value
    if origin is typing.Literal:
        return value in typing.get_args(hint), value
    if origin is not None:
        hint = origin  # list[str] -> list, dict[str, float] -> dict, ...
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if isinstance(hint, type):
        return isinstance(value, hint), value
    return True, value  # a hint this checker does not understand: not checked


def suggest(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def check_options(
    family: str, cls: type, options: dict[str, Any], passthrough: Iterable[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """``(accepted, dropped)`` for ``cls(**accepted)``; raises :class:`InputError` for an option ``cls`` does not
    take (unless it is one of ``passthrough``, then it is dropped) or a value of the wrong type."""
    params = constructor_parameters(cls)
    hints = _hints(cls)
    shared = set(passthrough)
    accepted: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in options.items():
        if key not in params:
            if key in shared:
                dropped.append(key)
                continue
            raise InputError(
                f"reranker {family!r} has no option {key!r}{suggest(key, params)}; "
                f"its options: {', '.join(sorted(params)) or 'none'}"
            )
        hint = hints.get(key, Any)
        ok, converted = _matches(value, hint)
        if not ok:
            raise InputError(
                f"reranker {family!r} option {key}={_shown(value)}: expected {_type_name(hint)}, "
                f"got {type(value).__name__}"
            )
        accepted[key] = converted
    return accepted, sorted(dropped)
