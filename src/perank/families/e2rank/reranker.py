"""The E2Rank reranker: one text-embedding model as a listwise reranker through an enriched query.

E2Rank (arXiv 2510.22733; code: Alibaba-NLP/E2Rank, weights ``Alibaba-NLP/E2Rank-0.6B/4B/8B``) embeds the query
together with its first ``k`` candidates, written as a listwise prompt, and ranks every candidate by the cosine
between that pseudo-query vector and the candidate's own embedding (pseudo-relevance feedback in one encoder
call). What its evaluation script does, and this family does likewise: candidates cut to their first 1,024 words
and embedded alone, with ``<|endoftext|>`` appended for the Qwen3 embedders (vLLM's ``embed`` adds no end token
and their pooling reads the last one); the prompt goes through the tokenizer's chat template as one user message
(``add_generation_prompt=True``, ``enable_thinking=False``) when the tokenizer has one; vectors are L2-normalised;
all candidates are scored against the one pseudo-query. ``mode="plain"`` embeds the query alone (E2Rank's
``--rank-method embedding``: the ``Instruct:`` prompt for chat models, the model's own query prompt otherwise), so
over a sentence-transformers encoder it is exactly the ``dense`` family (a test checks it).

Candidate vectors go through :class:`perank.backends.sentence_embedder.SentenceEmbedder`, with the persistent
cache when ``embedding_cache`` is set: the same vectors the ``dense`` family stores for the same model.
"""

from __future__ import annotations

from typing import Any

from perank.backends.sentence_embedder import (
    SentenceEmbedder,
    load_sentence_transformer,
    pools_last_token,
    resolve_sentence_transformer,
    sentence_model_label,
)
from perank.families.e2rank.prompts import (
    PASSAGE_WORDS,
    PROMPTS,
    QUERY_FIRST,
    cut_words,
    listwise_text,
    task_prompts,
)
from perank.ranking.budgets import TextBudgets, TokenBudget, special_tokens
from perank.ranking.pointwise import Pairs, PairScores, PointwiseReranker
from perank.types import InputError

MODES = ("listwise", "plain")

#: the end token E2Rank's evaluation appends to every text it embeds alone (Qwen3's ``<|endoftext|>``)
END_TOKEN = "<|endoftext|>"


class E2RankReranker(PointwiseReranker):
    """Ranks candidates by cosine with an embedding of the listwise prompt (query + first ``k`` candidates).

    Options: ``model_path`` (a sentence-transformers folder or hub id, ``Alibaba-NLP/E2Rank-0.6B`` etc., or a bare
    Qwen3 folder; default the packaged all-MiniLM-L6-v2), ``k`` (candidates in the prompt, E2Rank's
    ``num_input_docs``: 20), ``prompt`` (``e2rank``: the task's template, query last; ``query-first``), ``task``
    (the template set of E2Rank's evaluation: ``web-search`` = ``dl19``/``dl20``, ``covid``, ``nfc``, ...),
    ``mode`` (``listwise`` or ``plain``), ``passage_words`` (1,024), ``max_length`` (the encoder's limit in
    tokens), ``batch_size``, ``device``, ``embedding_cache`` (an SQLite file for candidate vectors).
    Stats per query beyond the usual: ``truncated_prompts`` (1 when the encoder cut the pseudo-query).
    """

    name = "e2rank"

    def __init__(
        self,
        model_path: str | None = None,
        k: int = 20,
        prompt: str = "e2rank",
        task: str = "web-search",
        mode: str = "listwise",
        passage_words: int = PASSAGE_WORDS,
        max_length: int | None = None,
        batch_size: int = 64,
        device: str | None = None,
        embedding_cache: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise InputError(f"option mode={mode!r}: choose one of {', '.join(MODES)}")
        if prompt not in PROMPTS:
            raise InputError(f"option prompt={prompt!r}: choose one of {', '.join(PROMPTS)}")
        for option, value in (("k", k), ("passage_words", passage_words)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"option {option}={value!r}: must be a positive integer")
        self.prompts = task_prompts(task)
        self.model_name = model_path
        self.model_path = resolve_sentence_transformer(model_path)
        self.k, self.prompt, self.task, self.mode, self.passage_words = k, prompt, task, mode, passage_words
        self.batch_size = int(batch_size)
        model = load_sentence_transformer(self.model_path, device=device, max_length=max_length)
        cache = None
        if embedding_cache:
            from perank.backends.embedding_cache import EmbeddingCache

            cache = EmbeddingCache(embedding_cache)
        self.embedder = SentenceEmbedder(model, self.batch_size, cache, cache_name=self.model_path)
        tokenizer = self.embedder.tokenizer
        self.chat = getattr(tokenizer, "chat_template", None) is not None
        # E2Rank appends the end token by hand to what its last-token pooler embeds; an encoder has its own [SEP]
        self.end = END_TOKEN if pools_last_token(model) and END_TOKEN in tokenizer.get_vocab() else ""

    @property
    def scores_each_pair(self) -> bool:  # type: ignore[override]
        """Only the plain mode scores a pair on its own; a listwise score depends on the whole list."""
        return self.mode == "plain"

    def describe(self) -> dict[str, Any]:
        label = sentence_model_label(self.model_name)
        return {
            "reranker": self.name,
            "model": label,
            "model_path": self.model_path,
            "run_label": f"{self.name}-{label}",
            "mode": self.mode,
            "k": self.k,
            "prompt": self.prompt,
            "task": self.task,
            "passage_words": self.passage_words,
            "max_length": self.embedder.max_length,
            "batch_size": self.batch_size,
            "embedding_cache": str(self.embedder.cache.path) if self.embedder.cache is not None else None,
        }

    def text_budgets(self) -> TextBudgets:
        """Passages: the encoder's limit less its special tokens, cut by the encoder itself. The query has no
        budget of its own in listwise mode (it sits inside the prompt, which the encoder truncates and
        ``truncated_prompts`` counts); in plain mode it is read as ``dense`` reads it."""
        tokenizer = self.embedder.tokenizer
        length = max(1, self.embedder.max_length - special_tokens(tokenizer))
        budget = TokenBudget(tokenizer, length, truncated_by_model=True)
        return TextBudgets(query=budget, passage=budget)

    def pseudo_query(self, query: str, passages: list[str]) -> str:
        """The text embedded as the query: the listwise prompt of ``query`` and its first ``k`` (cut) passages,
        through the chat template when the tokenizer has one; in plain mode the ``Instruct:`` query of chat
        models (with the end token), the bare query otherwise."""
        if self.mode == "plain":
            return self.prompts.instruct.format(query=query) + self.end if self.chat else query
        template = self.prompts.listwise if self.prompt == "e2rank" else QUERY_FIRST
        text = listwise_text(query, [cut_words(p, self.passage_words) for p in passages[: self.k]], template)
        if not self.chat:
            return text
        messages = [{"role": "user", "content": text}]
        return self.embedder.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )

    def _documents(self, passages: list[str]) -> list[str]:
        """Candidates as embedded: E2Rank's word cut and end token for its own models; unchanged for an encoder,
        so the vectors (and the cache) are the ``dense`` family's."""
        if not self.end:
            return passages
        return [cut_words(p, self.passage_words) + self.end for p in passages]

    def score_pairs(self, pairs: Pairs) -> PairScores:
        """Each passage's cosine with its query's vector: in listwise mode built from its list, in plain mode from
        the query alone, encoded as ``dense`` encodes it (so the scores are ``dense``'s to the bit)."""
        groups = pairs.by_query()
        order = list(groups)
        texts = [self.pseudo_query(pairs.queries[qi], [pairs.passages[j] for j in groups[qi]]) for qi in order]
        plain_encoder = self.mode == "plain" and not self.chat
        q_emb = self.embedder.encode_queries(texts) if plain_encoder else self.embedder.encode_texts(texts)
        documents = self._documents(pairs.passages)
        d_emb = self.embedder.encode_documents(documents)
        scores = [0.0] * len(pairs)
        tokens = self.embedder.token_counts(documents)
        truncated = [0.0] * len(pairs)
        lengths, cuts = self.embedder.token_counts(texts), self.embedder.truncated(texts)
        for row, qi in enumerate(order):
            idx = groups[qi]
            for j, value in zip(idx, (d_emb[idx] @ q_emb[row].to(d_emb.dtype)).tolist()):
                scores[j] = float(value)
            tokens[idx[0]] += lengths[row]  # per query once, on its first pair: the prompt's tokens and its cut
            truncated[idx[0]] = float(cuts[row])
        return PairScores(scores=scores, tokens=tokens, counts={"truncated_prompts": truncated})
