"""Parsing a generated ranking (``[4] > [2] > ...``) into a permutation, repairing what the LLM got wrong.

A text-generating ranker can repeat an identifier, invent one that does not exist, or stop early. The
repair is RankGPT's (and PE-Rank's RankMistral baseline's): every non-digit becomes a space, identifiers
are 1-based, repeats and out-of-range numbers are dropped, and the identifiers never mentioned are
appended in their input order. Each kind of repair is counted so the evaluation can report how often the
model's output was not a clean permutation.

Prompts that number passages from 0 (DeAR's model card) pass ``first_id=0``, and a family whose reference
parser reads only bracketed identifiers (the card's ``\\[(\\d+)\\]``) passes ``bracketed=True``; the repairs are
the same.
"""

from __future__ import annotations

import re

REPAIR_KINDS = ("repeated", "out_of_range", "missing")


def parse_permutation(
    text: str, n: int, *, first_id: int = 1, bracketed: bool = False
) -> tuple[list[int], dict[str, int]]:
    """Turn generated text into a permutation of ``range(n)`` plus repair counts.

    Returns ``(order, repairs)`` where ``order[k]`` is the 0-based input index ranked k-th and ``repairs``
    has the keys ``repeated``, ``out_of_range`` and ``missing``. ``first_id`` is the identifier of the first
    passage in the prompt (1 for RankGPT); with ``bracketed`` only numbers written ``[k]`` count.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    repairs = dict.fromkeys(REPAIR_KINDS, 0)
    order: list[int] = []
    seen: set[int] = set()
    tokens = re.findall(r"\[(\d+)\]", text) if bracketed else re.sub(r"\D", " ", text).split()
    for token in tokens:
        # a runaway digit string cannot be an identifier (and int() refuses very long ones)
        idx = int(token) - first_id if len(token) <= 9 else -1
        if not 0 <= idx < n:
            repairs["out_of_range"] += 1
        elif idx in seen:
            repairs["repeated"] += 1
        else:
            seen.add(idx)
            order.append(idx)
    missing = [i for i in range(n) if i not in seen]
    repairs["missing"] = len(missing)
    return order + missing, repairs
