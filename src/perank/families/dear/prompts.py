"""DeAR's listwise prompts, exactly as its two public sources write them, and how an answer is read.

The model card and the authors' repository disagree, so both are offered (``-o prompt=...``):

- ``card``: one plain text prompt (no chat template), passages numbered from 0 and cut to their first 300
  characters; the answer is read from its bracketed ``[k]`` identifiers.
- ``repo``: RankGPT-style chat messages (``listwise_rerank/prompts.py``): the system turn
  ``You are RankLLM, ...``, one user turn per passage numbered from 1 and cut to 300 words, each acknowledged
  by the assistant, and RankGPT's closing instruction.
- ``repo-cot``: the same messages with the repository's chain-of-thought closing instruction.

The repository reads every answer after ``</think>`` when the model wrote one (a reasoning trace), else the
whole text; both repo variants do so. Passages also lose ``[k]`` look-alikes (rewritten ``(k)``) so they cannot
pose as identifiers.
"""

from __future__ import annotations

import re

from perank.ranking.prompting import clean_passage

#: prompt names accepted by ``-o prompt=...``
PROMPTS = ("card", "repo", "repo-cot")

SYSTEM = "You are RankLLM, an assistant that ranks passages by relevance to the query."

_CARD = (
    "I will provide you with {n} passages, each indicated by a number identifier [].\n"
    "Rank the passages based on their relevance to the search query: {query}.\n\n"
    "{passages}\n\n"
    "Search Query: {query}.\n"
    "Rank the passages above based on their relevance to the search query. Output the ranking as a list of numbers."
)
_REPO_PREFIX = (
    "I will provide you with {n} passages, each indicated by number identifier [].\n"
    "Rank the passages based on their relevance to query: {query}."
)
_REPO_ACK = "Okay, please provide the passages."
# RankGPT's closing instruction (the repository's messages are RankGPT's; its own closing turn is the CoT one)
_REPO_POST = (
    "Search Query: {query}. \nRank the {n} passages above based on their relevance to the search query. The "
    "passages should be listed in descending order using identifiers. The most relevant passages should be listed "
    "first. The output format should be [] > [], e.g., [1] > [2]. Only response the ranking results, do not say "
    "any word or explain."
)
_COT_POST = (
    "Search Query: {query}.\n"
    "Rank the {n} passages above based on their relevance to the search query. "
    "The passages should be listed in descending order using identifiers.\n"
    "Please follow the steps below:\n"
    "Step 1. List the information requirements to answer the query.\n"
    "Step 2. For each requirement, find the passages containing that information.\n"
    "Step 3. Rank passages that best cover clear and diverse information. Include all passages.\n"
    "Output format strictly: [2] > [1] > [3] ... Only output the ranking using identifiers; no explanations."
)

#: the card cuts passages to 300 characters, the repository to 300 words
CARD_CHARS = 300
REPO_WORDS = 300


def first_id(prompt: str) -> int:
    """The identifier of the first passage: 0 on the card, 1 in the repository."""
    return 0 if prompt == "card" else 1


def is_chat(prompt: str) -> bool:
    """Whether the variant is chat messages (rendered with the LLM's chat template) rather than plain text."""
    return prompt != "card"


def cut_passage(prompt: str, text: str) -> str:
    """A passage as the variant shows it: the card's first 300 characters, or the repository's first 300 words
    (after dropping an empty ``Title: Content:`` header), then without identifier look-alikes."""
    if prompt == "card":
        return clean_passage(text[:CARD_CHARS])
    text = text.replace("Title: Content: ", "").strip()
    return clean_passage(" ".join(text.split()[:REPO_WORDS]))


def card_prompt(query: str, passages: list[str]) -> str:
    """The card's plain-text prompt for passages already cut (numbered from 0)."""
    listing = "\n".join(f"[{i}] {p}" for i, p in enumerate(passages))
    return _CARD.format(n=len(passages), query=query, passages=listing)


def repo_messages(prompt: str, query: str, passages: list[str]) -> list[dict[str, str]]:
    """The repository's chat messages for passages already cut (numbered from 1)."""
    n = len(passages)
    msgs = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": _REPO_PREFIX.format(n=n, query=query)},
        {"role": "assistant", "content": _REPO_ACK},
    ]
    for i, p in enumerate(passages, start=1):
        msgs.append({"role": "user", "content": f"[{i}] {p}"})
        msgs.append({"role": "assistant", "content": f"Received passage [{i}]."})
    post = _COT_POST if prompt == "repo-cot" else _REPO_POST
    msgs.append({"role": "user", "content": post.format(n=n, query=query)})
    return msgs


def answer(prompt: str, ranking: list[int]) -> str:
    """The teacher answer for a window: ``ranking[k]`` (0-based input index ranked k-th) as ``[3] > [1] > ...``
    in the variant's numbering."""
    base = first_id(prompt)
    return " > ".join(f"[{i + base}]" for i in ranking)


def answer_text(prompt: str, text: str) -> str:
    """The part of a generated text that holds the ranking: after ``</think>`` in the repository's variants."""
    if prompt == "card":
        return text
    found = re.search(r"</think>\s*(.*)", text, flags=re.DOTALL | re.IGNORECASE)
    return found.group(1).strip() if found else text.strip()
