"""Fitting a window of passages into a token budget, the same way at inference and in fine-tuning.

A listwise prompt holds a whole window, so a few long passages can push it past the model's context. Rather
than cutting the prompt's end (the instruction) or refusing, passages are cut: first each to an optional
per-passage cap, then, if the prompt is still over budget, the longest ones to one common length (water
filling: short passages stay whole). The number of passages cut is returned so callers can count it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: re-measuring after a cut can differ by a token or two (tokens merge across the cut): a few rounds settle it
_ROUNDS = 8


def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens of ``text`` alone (no special tokens added)."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def cut_tokens(tokenizer: Any, text: str, limit: int) -> str:
    """``text`` cut to its first ``limit`` tokens (decoded back to text); unchanged when it is shorter."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer.decode(ids[: max(limit, 0)]) if len(ids) > limit else text


def fill_cap(lengths: list[int], excess: int) -> int:
    """The largest per-passage token cap that removes at least ``excess`` tokens (0 if none does)."""
    lo, hi = 0, max(lengths, default=0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(max(0, n - mid) for n in lengths) >= excess:
            lo = mid
        else:
            hi = mid - 1
    return lo


def fit_passages(
    tokenizer: Any,
    passages: list[str],
    measure: Callable[[list[str]], int],
    room: int | None,
    max_passage_tokens: int | None = None,
) -> tuple[list[str], int]:
    """``(passages, n_cut)``: the passages cut to ``max_passage_tokens`` and then, while ``measure(passages)``
    (the prompt's token count) exceeds ``room``, the longest cut evenly. ValueError when even empty passages
    do not fit."""
    passages = list(passages)
    cut = [False] * len(passages)
    if max_passage_tokens:
        for i, p in enumerate(passages):
            if count_tokens(tokenizer, p) > max_passage_tokens:
                passages[i], cut[i] = cut_tokens(tokenizer, p, max_passage_tokens), True
    if room is None:
        return passages, sum(cut)
    for _ in range(_ROUNDS):
        excess = measure(passages) - room
        if excess <= 0:
            return passages, sum(cut)
        lengths = [count_tokens(tokenizer, p) for p in passages]
        if not any(lengths):
            break
        cap = fill_cap(lengths, excess)
        for i, p in enumerate(passages):
            if lengths[i] > cap:
                passages[i], cut[i] = cut_tokens(tokenizer, p, cap), True
    if measure(passages) <= room:
        return passages, sum(cut)
    raise ValueError(f"a window of {len(passages)} passages does not fit in {room} tokens even with its passages cut")
