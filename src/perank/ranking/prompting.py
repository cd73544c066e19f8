"""Text hygiene shared by every prompt-based family: what a passage may and may not carry into a prompt."""

from __future__ import annotations

import re
from collections.abc import Iterable


def clean_passage(text: str) -> str:
    """Strip the passage and rewrite ``[k]`` inside it to ``(k)`` so it cannot look like an identifier."""
    return re.sub(r"\[(\d+)\]", r"(\1)", text.strip())


def strip_tokens(text: str, tokens: Iterable[str]) -> str:
    """``text`` with each of ``tokens`` (special-token strings) replaced by a space: user text must not add
    tokens that the prompt reserves (a passage token without a vector, an end-of-turn inside a passage)."""
    for token in tokens:
        if token:
            text = text.replace(token, " ")
    return text
