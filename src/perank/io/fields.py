"""The values every reader checks the same way: finite scores, ids, and one line of JSON."""

from __future__ import annotations

import json
import math
from typing import Any

from perank.types import InputError


def finite_float(value: Any, what: str, where: str) -> float:
    """``value`` as a finite float, or an :class:`InputError` naming ``what`` and ``where``: a NaN or infinite
    score would sort anywhere (trec_eval and every ranking sort treat it arbitrarily), so none is ever read."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(f"{where}: {what} {value!r} is not a number")
    try:
        number = float(value)
    except (ValueError, OverflowError) as exc:
        raise InputError(f"{where}: {what} {value!r} is not a number") from exc
    if not math.isfinite(number):
        raise InputError(f"{where}: {what} {value!r} is not finite")
    return number


def parse_id(value: Any, what: str, where: str) -> str:
    """A query or document id: a non-empty string or an integer (JSON numbers are common for ids)."""
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        raise InputError(f"{where}: {what} {value!r} is not a string or integer id")
    if isinstance(value, str) and any(ch.isspace() for ch in value):
        raise InputError(f"{where}: {what} {value!r} contains whitespace (TREC files could not hold it)")
    return str(value)


def json_line(line: str, where: str) -> Any:
    """One JSON value; malformed (or absurdly nested) JSON is an error naming the line."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from exc
    except RecursionError as exc:
        raise InputError(f"{where}: JSON nested too deeply") from exc
