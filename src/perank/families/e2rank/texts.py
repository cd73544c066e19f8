"""The texts E2Rank embeds, built in one place for the reranker and for training, so both see the same strings.

Three kinds of text go through the embedder: the pseudo-query (the listwise prompt of a query and its first ``k``
candidates, each cut to ``passage_words`` words, through the tokenizer's chat template when it has one), the plain
query (E2Rank's ``Instruct:`` query for chat models; the bare query otherwise, to which the model's own query
prompt is added as ``dense`` adds it) and the candidates (unchanged for an encoder, so the vectors are ``dense``'s;
cut and closed by the end token for E2Rank's own last-token-pooled models). :class:`E2RankTexts` holds what decides
them; :func:`for_model` reads the model-dependent part (chat template, end token) off a loaded embedder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from perank.backends.sentence_embedder import pools_last_token
from perank.families.e2rank.prompts import PROMPTS, QUERY_FIRST, TaskPrompts, cut_words, listwise_text, task_prompts
from perank.types import InputError

#: the end token E2Rank's evaluation appends to every text it embeds alone (Qwen3's ``<|endoftext|>``)
END_TOKEN = "<|endoftext|>"


@dataclass(frozen=True)
class E2RankTexts:
    """The text settings (task prompts, prompt variant, ``k``, ``passage_words``) and the model's (its
    tokenizer when it has a chat template, its end token or "")."""

    prompts: TaskPrompts
    prompt: str
    k: int
    passage_words: int
    chat_tokenizer: Any = None
    end: str = ""

    @property
    def chat(self) -> bool:
        return self.chat_tokenizer is not None

    @property
    def uses_query_prompt(self) -> bool:
        """Whether the plain query is embedded with the model's own query prompt (an encoder: as ``dense``)."""
        return not self.chat

    def listwise(self, query: str, passages: Sequence[str]) -> str:
        """The pseudo-query: the listwise prompt of ``query`` and its first ``k`` passages (cut), through the chat
        template when the tokenizer has one."""
        template = self.prompts.listwise if self.prompt == "e2rank" else QUERY_FIRST
        text = listwise_text(query, [cut_words(p, self.passage_words) for p in passages[: self.k]], template)
        if not self.chat:
            return text
        messages = [{"role": "user", "content": text}]
        return self.chat_tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )

    def plain(self, query: str) -> str:
        """The plain query: the ``Instruct:`` query with the end token for chat models, the bare query otherwise
        (the model's own query prompt is the embedder's to add: :attr:`uses_query_prompt`)."""
        return self.prompts.instruct.format(query=query) + self.end if self.chat else query

    def documents(self, passages: Sequence[str]) -> list[str]:
        """Candidates as embedded: E2Rank's word cut and end token for its own models; unchanged for an encoder."""
        if not self.end:
            return list(passages)
        return [cut_words(p, self.passage_words) + self.end for p in passages]


def check_options(task: str, prompt: str, k: int, passage_words: int) -> TaskPrompts:
    """The task's prompts, once the text options are known good (InputErrors name the bad option); cheap, so a
    caller checks before it loads a model."""
    if prompt not in PROMPTS:
        raise InputError(f"option prompt={prompt!r}: choose one of {', '.join(PROMPTS)}")
    for option, value in (("k", k), ("passage_words", passage_words)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"option {option}={value!r}: must be a positive integer")
    return task_prompts(task)


def for_model(model: Any, prompts: TaskPrompts, prompt: str, k: int, passage_words: int) -> E2RankTexts:
    """The texts of a loaded sentence-transformers ``model`` (options checked by :func:`check_options`)."""
    tokenizer = model.tokenizer
    chat = tokenizer if getattr(tokenizer, "chat_template", None) is not None else None
    # E2Rank appends the end token by hand to what its last-token pooler embeds; an encoder has its own [SEP]
    end = END_TOKEN if pools_last_token(model) and END_TOKEN in tokenizer.get_vocab() else ""
    return E2RankTexts(prompts, prompt, k, passage_words, chat, end)
