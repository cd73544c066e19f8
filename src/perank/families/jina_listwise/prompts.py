"""jina-reranker-v3's prompt: one ChatML conversation holding the query, every passage of a block and markers.

The text is the published model's input, so it must match character for character: ``format_docs_prompts_func``
of ``modeling.py`` in ``jinaai/jina-reranker-v3`` (main at commit 050e171, "add: max_query/doc_length
parametrization (#6)"). A system turn says what ranking is wanted; the user turn announces ``n`` passages and the
query, then (when given) an ``<instruct>`` block, then each passage as ``<passage id="i">`` (numbered from 0)
ending with the document marker ``<|embed_token|>``, then the query again ending with the query marker
``<|rerank_token|>``; the assistant turn is opened with an empty ``<think>`` block (Qwen3's no-thinking form). The
model reads the hidden state at each marker, so the query sits after the passages and sees them all (causal
attention), while each passage sees only the passages before it.

Both marker strings are removed from the query and the passages before they are written in (jina's
``sanitize_input``), so a text cannot add or move a marker.
"""

from __future__ import annotations

from collections.abc import Sequence

#: the token after each passage, whose hidden state becomes the passage's vector
DOC_MARKER = "<|embed_token|>"
#: the token after the query (its second occurrence), whose hidden state becomes the query's vector
QUERY_MARKER = "<|rerank_token|>"
MARKERS = (DOC_MARKER, QUERY_MARKER)

SYSTEM = (
    "You are a search relevance expert who can determine a ranking of the passages based on how relevant they are "
    "to the query. If the query is a question, how relevant a passage is depends on how well it answers the "
    "question. If not, try to analyze the intent of the query and assess how well each passage satisfies the "
    "intent. If an instruction is provided, you should follow the instruction when determining the ranking."
)
#: the assistant turn as the published code opens it (``no_thinking=True``)
ASSISTANT_OPENING = "<|im_start|>assistant\n<think>\n\n</think>\n\n"


def sanitize(text: str) -> str:
    """``text`` without either marker string (jina's ``sanitize_input``: the query marker first, then the
    document one)."""
    for marker in (QUERY_MARKER, DOC_MARKER):
        text = text.replace(marker, "")
    return text


def block_prompt(query: str, passages: Sequence[str], instruction: str | None = None) -> str:
    """The full prompt of one block: ``query`` and ``passages`` as they are read (already truncated), sanitised
    here; ``instruction`` (falsy: none) goes in an ``<instruct>`` block before the passages."""
    query = sanitize(query)
    user = (
        f"I will provide you with {len(passages)} passages, each indicated by a numerical identifier. "
        f"Rank the passages based on their relevance to query: {query}\n"
    )
    if instruction:
        user += f"<instruct>\n{instruction}\n</instruct>\n"
    user += "\n".join(f'<passage id="{i}">\n{sanitize(p)}{DOC_MARKER}\n</passage>' for i, p in enumerate(passages))
    user += f"\n<query>\n{query}{QUERY_MARKER}\n</query>"
    return f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n{ASSISTANT_OPENING}"
