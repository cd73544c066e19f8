"""The ranking fields of ``perank build-rank-data`` rows, read the same way by every family that trains on them.

A row holds a window of n candidates and a teacher ranking: ``ranking[k]`` is the input index of the passage at
rank k, and ``extra_texts`` holds 2n texts, the n candidates in input (first-stage) order and then the same n in
ranked order (PE-Rank's prompts name both halves). PE-Rank's stage 2 and E2Rank train on the same rows, so the
same teacher lists; the check lives here once so that a row one family accepts the other cannot read otherwise.
"""

from __future__ import annotations

from typing import Any


def check_ranking(obj: dict[str, Any]) -> tuple[list[int], list[str]]:
    """``(ranking, candidates in input order)`` of one row; a ValueError says what is wrong with it."""
    ranking = obj.get("ranking")
    texts = obj.get("extra_texts")
    if not isinstance(ranking, list) or not ranking or not all(isinstance(r, int) for r in ranking):
        raise ValueError("'ranking' must be a non-empty list of integers")
    n = len(ranking)
    if sorted(ranking) != list(range(n)):
        raise ValueError(f"'ranking' is not a permutation of 0..{n - 1}: {ranking}")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError("'extra_texts' must be a list of strings")
    if len(texts) != 2 * n:
        raise ValueError(f"'extra_texts' has {len(texts)} texts; expected 2n = {2 * n} for a ranking of {n}")
    candidates = texts[:n]
    if [candidates[r] for r in ranking] != texts[n:]:
        raise ValueError("the second half of 'extra_texts' is not the candidates in 'ranking' order")
    return ranking, candidates
