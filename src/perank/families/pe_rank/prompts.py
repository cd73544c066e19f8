"""PE-Rank's prompt texts (embedding-only and "w/ content"), exactly as PE-Rank renders them (REFERENCE.md).

The text matters: the released checkpoint was trained on these strings. The user turn is
``prefix + passage lines + post``; it is rendered with the LLM's own chat template and
``add_generation_prompt=True`` (no system message of ours).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perank.ranking.prompting import clean_passage, strip_tokens

PLACEHOLDER = "<PLACEHOLDER>"
RANK_TOKEN = "<RANK>"

_EMB_PREFIX = (
    "I will provide you with {n} passages, each with a special token representing the passage enclosed in [], "
    "followed by original text.\nRank the passages based on their relevance to the search query: {query}.\n"
)
_EMB_POST = (
    "Search Query: {query}.\nRank the {n} relatively ordered passages above based on their relevance to the "
    "search query, output the ranking in descending order. Only output the {n} unique special token in the ranking."
    "\n\n"
)
# Variant without the query's text (``PromptSpec.query_text=False``, a project choice): the template keeps its
# words but ``{query}`` renders empty, so the query-embedding token is the only view of the query. An ablation:
# does the LLM rank from the query vector alone, or from the query's words (checkpoints/README.md)?
# Variant with a query-embedding token (a project choice, off for the released checkpoint): the query's own
# encoder embedding is injected so a small LLM can compare it with the passage tokens. Position "prompt" puts
# it right after the query's text here; position "answer" makes it the first token of the answer instead
# (see ``answer_prefix``), so the hidden state that scores the first rank is computed AT the query vector and
# carries it in its residual stream, with no attention hop to learn.
_EMB_POST_QUERY_TOKEN = (
    "Search Query: {query} [" + PLACEHOLDER + "].\nRank the {n} relatively ordered passages above based on their "
    "relevance to the search query, output the ranking in descending order. Only output the {n} unique special "
    "token in the ranking.\n\n"
)
PROMPT_MODES = ("embedding", "text-embedding")
QUERY_EMBEDDING_POSITIONS = ("prompt", "answer")


def sanitize(text: str) -> str:
    """Remove the passage-token strings from user text: they would add tokens that have no vector."""
    return strip_tokens(text, (PLACEHOLDER, RANK_TOKEN))


@dataclass(frozen=True)
class PromptSpec:
    """Which prompt to render: ``mode`` is one of PROMPT_MODES."""

    mode: str = "embedding"
    query_embedding: bool = False
    query_embedding_position: str = "prompt"
    query_text: bool = True

    def __post_init__(self) -> None:
        if self.mode not in PROMPT_MODES:
            raise ValueError(f"unknown prompt mode {self.mode!r}; choose one of {', '.join(PROMPT_MODES)}")
        if not self.query_text and not self.query_embedding:
            raise ValueError("a prompt without the query text needs the query-embedding token")
        if self.query_embedding_position not in QUERY_EMBEDDING_POSITIONS:
            raise ValueError(
                f"unknown query-embedding position {self.query_embedding_position!r}; "
                f"choose one of {', '.join(QUERY_EMBEDDING_POSITIONS)}"
            )


def user_text(spec: PromptSpec, query: str, passages: list[str]) -> str:
    """The user turn for one window of passages (numbered from 1)."""
    n = len(passages)
    query = query.strip() if spec.query_text else ""
    if spec.mode == "embedding":
        lines = [f"Passage {i}: [{PLACEHOLDER}]\n\n" for i in range(1, n + 1)]
    else:
        lines = [f"Passage {i}: [{PLACEHOLDER}] {clean_passage(p)}\n\n" for i, p in enumerate(passages, 1)]
    in_prompt = spec.query_embedding and spec.query_embedding_position == "prompt"
    post = _EMB_POST_QUERY_TOKEN if in_prompt else _EMB_POST
    return _EMB_PREFIX.format(n=n, query=query) + "".join(lines) + post.format(n=n, query=query)


def messages(spec: PromptSpec, query: str, passages: list[str], ranking_turn: bool = False) -> list[dict[str, str]]:
    """Chat messages for one window; with ``ranking_turn`` the assistant answers ``<RANK>`` * n (training)."""
    msgs = [{"role": "user", "content": user_text(spec, query, passages)}]
    if ranking_turn:
        msgs.append({"role": "assistant", "content": answer_prefix(spec) + RANK_TOKEN * len(passages)})
    return msgs


def answer_prefix(spec: PromptSpec) -> str:
    """What the answer starts with before the first ranked passage: the query-embedding placeholder when it
    sits in the answer, else nothing. Inference appends it after the chat template's generation prompt."""
    return PLACEHOLDER if spec.query_embedding and spec.query_embedding_position == "answer" else ""


def window_prompt(tokenizer: Any, spec: PromptSpec, query: str, passages: list[str]) -> str:
    """The text the decoder is given for one window at inference: the sanitised query and passages in the
    chat template with its generation prompt, then the answer prefix. One function so that every caller
    (the reranker, diagnostics) scores exactly the prompt the model was trained on."""
    msgs = messages(spec, sanitize(query), [sanitize(p) for p in passages])
    prompt = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    return prompt + answer_prefix(spec)
