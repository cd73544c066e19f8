"""E2Rank's prompts: the listwise pseudo-query and the plain embedding query, per task.

E2Rank (Liu et al. 2025, arXiv 2510.22733) embeds a listwise prompt (the query with its top-k candidates,
numbered from 1) as an enriched query. The texts below are those of the E2Rank repository's evaluation script
(``src/eval.py``, ``EVAL_PROMPTS``; Alibaba-NLP/E2Rank at commit c72cc0a and later): the model was trained and
evaluated with them, so a different wording is a different model input. Each task has a listwise template and an
``Instruct:`` template for the plain embedding mode. The TREC DL tasks use the web-search pair, which is also the
default. ``query-first`` is this toolkit's variant for short-context encoders (MiniLM reads 256 tokens): E2Rank's
template puts the query last, where a short encoder never reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perank.types import InputError


@dataclass(frozen=True)
class TaskPrompts:
    """One task's listwise template (``{documents}``, ``{query}``) and plain-mode instruction (``{query}``)."""

    listwise: str
    instruct: str


def _listwise(head: str, items: str = "Documents") -> str:
    return head + ":\n" + items + ":\n{documents}\nSearch Query: {query}"


def _instruct(task: str) -> str:
    return "Instruct: " + task + "\nQuery:{query}"


_WEB = TaskPrompts(
    _listwise("Given a web search query and some relevant documents, rerank the documents that answer the query"),
    _instruct("Given a web search query, retrieve relevant passages that answer the query"),
)

#: the task names of E2Rank's evaluation script (BRIGHT tasks left out), keyed as ``--reranker-arg task=NAME``
TASKS: dict[str, TaskPrompts] = {
    "web-search": _WEB,
    "dl19": _WEB,
    "dl20": _WEB,
    "covid": TaskPrompts(
        _listwise("Given a query on COVID-19 and some relevant documents, rerank the documents that answer the query"),
        _instruct("Given a query on COVID-19, retrieve documents that answer the query"),
    ),
    "nfc": TaskPrompts(
        _listwise("Given a question and some relevant documents, rerank the documents that best answer the query"),
        _instruct("Given a question, retrieve relevant documents that best answer the question"),
    ),
    "touche": TaskPrompts(
        _listwise(
            "Given a question and some arguments, rerank the detailed and persuasive arguments that answer the "
            "question",
            "Arguments",
        ),
        _instruct("Given a question, retrieve detailed and persuasive arguments that answer the question"),
    ),
    "dbpedia": TaskPrompts(
        _listwise("Given a query and some relevant entities, rerank the best descriptions from DBPedia", "Entities"),
        _instruct("Given a query, retrieve relevant entity descriptions from DBPedia"),
    ),
    "scifact": TaskPrompts(
        _listwise(
            "Given a scientific claim and some relevant documents, rerank the documents that best support or "
            "refute the claim"
        ),
        _instruct("Given a scientific claim, retrieve documents that support or refute the claim"),
    ),
    "signal": TaskPrompts(
        _listwise(
            "Given a news article title and some relevant tweets, rerank the tweets that are most relevant to the "
            "query",
            "Tweets",
        ),
        _instruct("Given a news article title, retrieve relevant tweets"),
    ),
    "news": TaskPrompts(
        _listwise(
            "Given a news article title and some relevant documents, rerank the documents that best answer the query"
        ),
        _instruct(
            "Given a news headline, retrieve relevant relevant news articles that provide important context or "
            "background information"
        ),
    ),
    "robust04": TaskPrompts(
        _WEB.listwise, _instruct("Given a newswire query, retrieve relevant news articles that address the query.")
    ),
}

#: the prompt variants: E2Rank's own (query last) and the query-first order for short-context encoders
PROMPTS = ("e2rank", "query-first")

QUERY_FIRST = "Search Query: {query}\nDocuments:\n{documents}"

#: E2Rank's evaluation cuts every document to its first 1,024 whitespace-separated words
PASSAGE_WORDS = 1024


def task_prompts(task: str) -> TaskPrompts:
    """The prompts of ``task``; an unknown name is an :class:`InputError` listing the known ones."""
    if task not in TASKS:
        raise InputError(f"option task={task!r}: unknown; known: {', '.join(sorted(TASKS))}")
    return TASKS[task]


def cut_words(text: str, words: int) -> str:
    """The first ``words`` whitespace-separated words joined by single spaces, as E2Rank's evaluation cuts them."""
    return " ".join(text.split()[:words])


def listwise_text(query: str, passages: Sequence[str], template: str) -> str:
    """The listwise prompt: ``passages`` (already cut and limited to k) numbered from 1, one ``[i] text`` line
    each, and the query, filled into ``template``."""
    documents = "\n".join(f"[{i}] {p}" for i, p in enumerate(passages, start=1))
    return template.format(query=query, documents=documents)
