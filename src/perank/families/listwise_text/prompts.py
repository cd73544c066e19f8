"""Prompt texts of the text-generation listwise family: PE-Rank's RankMistral baseline and RankGPT's own.

``text`` (alias ``rankmistral``) is the uncompressed prompt of the PE-Rank paper ("Passage i: text"), and
``rankgpt`` RankGPT's numbering ("[i] text"). Both ask for ``[4] > [2] > ...``, which
:func:`perank.ranking.parsing.parse_permutation` reads. The user turn is rendered with the LLM's own chat
template (no system message of ours).
"""

from __future__ import annotations

from perank.ranking.prompting import clean_passage

_TEXT_PREFIX = (
    "I will provide you with {n} passages.\nRank the passages based on their relevance to the search query: {query}.\n"
)
_TEXT_POST = (
    "Search Query: {query}.\nRank the {n} relatively ordered passages above based on their relevance to the "
    "search query, output the ranking in descending order. The output format should be [] > [] > ..., e.g., "
    "[4] > [2] > ..., Only respond with the ranking results with {n} unique numbers, do not say anything else or "
    "explain.\n\n"
)
# RankGPT's own numbering ("[1] passage"), offered as a variant of the text prompt.
_RANKGPT_PREFIX = (
    "I will provide you with {n} passages, each indicated by number identifier []. \n"
    "Rank the passages based on their relevance to query: {query}.\n"
)
_RANKGPT_POST = (
    "Search Query: {query}. \nRank the {n} passages above based on their relevance to the search query. The "
    "passages should be listed in descending order using identifiers. The most relevant passages should be listed "
    "first. The output format should be [] > [], e.g., [1] > [2]. Only response the ranking results, do not say "
    "any word or explain."
)


#: prompt names accepted by ``-o prompt=...`` -> the template they render
PROMPT_VARIANTS = {"text": "text", "rankmistral": "text", "rankgpt": "rankgpt"}


def user_text(variant: str, query: str, passages: list[str]) -> str:
    """The user turn for one window of passages (numbered from 1)."""
    n = len(passages)
    query = query.strip()
    if PROMPT_VARIANTS[variant] == "text":
        lines = [f"Passage {i}: {clean_passage(p)}\n\n" for i, p in enumerate(passages, 1)]
        prefix, post = _TEXT_PREFIX, _TEXT_POST
    else:
        lines = [f"[{i}] {clean_passage(p)}\n" for i, p in enumerate(passages, 1)]
        prefix, post = _RANKGPT_PREFIX, _RANKGPT_POST
    return prefix.format(n=n, query=query) + "".join(lines) + post.format(n=n, query=query)


def messages(variant: str, query: str, passages: list[str]) -> list[dict[str, str]]:
    """Chat messages for one window."""
    return [{"role": "user", "content": user_text(variant, query, passages)}]
