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
cache when ``embedding_cache`` is set: the same vectors the ``dense`` family stores for the same model. The texts
are built by :mod:`perank.families.e2rank.texts`, which training uses too; a folder trained here
(``src/train.py --family e2rank``: a LoRA adapter over its base) records the settings it was trained with, and
they are this reranker's defaults for it (:mod:`perank.families.e2rank.settings`).
"""

from __future__ import annotations

from typing import Any

from perank.backends.sentence_embedder import (
    SentenceEmbedder,
    load_sentence_transformer,
    resolve_sentence_transformer,
    sentence_model_label,
)
from perank.families.e2rank.settings import resolve_settings
from perank.families.e2rank.texts import check_options, for_model
from perank.ranking.budgets import TextBudgets, TokenBudget, special_tokens
from perank.ranking.pointwise import Pairs, PairScores, PointwiseReranker
from perank.types import InputError

MODES = ("listwise", "plain")


class E2RankReranker(PointwiseReranker):
    """Ranks candidates by cosine with an embedding of the listwise prompt (query + first ``k`` candidates).

    Options: ``model_path`` (a sentence-transformers folder or hub id, ``Alibaba-NLP/E2Rank-0.6B`` etc., a bare
    Qwen3 folder, or a LoRA adapter folder trained by ``--family e2rank``; default the packaged all-MiniLM-L6-v2),
    ``k`` (candidates in the prompt, E2Rank's ``num_input_docs``: 20), ``prompt`` (``e2rank``: the task's
    template, query last; ``query-first``), ``task`` (the template set of E2Rank's evaluation: ``web-search`` =
    ``dl19``/``dl20``, ``covid``, ``nfc``, ...), ``mode`` (``listwise`` or ``plain``), ``passage_words`` (1,024),
    ``max_length`` (the encoder's limit in tokens), ``batch_size``, ``device``, ``embedding_cache`` (an SQLite
    file for candidate vectors). ``k``, ``prompt``, ``task``, ``passage_words`` and ``max_length`` left out take
    the values a trained folder records (its ``e2rank_config.json``), else the defaults above.
    Stats per query beyond the usual: ``truncated_prompts`` (1 when the encoder cut the pseudo-query).
    """

    name = "e2rank"

    def __init__(
        self,
        model_path: str | None = None,
        k: int | None = None,
        prompt: str | None = None,
        task: str | None = None,
        mode: str = "listwise",
        passage_words: int | None = None,
        max_length: int | None = None,
        batch_size: int = 64,
        device: str | None = None,
        embedding_cache: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise InputError(f"option mode={mode!r}: choose one of {', '.join(MODES)}")
        self.model_name = model_path
        self.model_path = resolve_sentence_transformer(model_path)
        given = {"k": k, "prompt": prompt, "task": task, "passage_words": passage_words, "max_length": max_length}
        settings = resolve_settings(self.model_path, given)
        self.k, self.prompt, self.task = settings["k"], settings["prompt"], settings["task"]
        self.mode, self.passage_words = mode, settings["passage_words"]
        self.prompts = check_options(self.task, self.prompt, self.k, self.passage_words)
        self.batch_size = int(batch_size)
        model = load_sentence_transformer(self.model_path, device=device, max_length=settings["max_length"])
        cache = None
        if embedding_cache:
            from perank.backends.embedding_cache import EmbeddingCache

            cache = EmbeddingCache(embedding_cache)
        self.embedder = SentenceEmbedder(model, self.batch_size, cache, cache_name=self.model_path)
        self.texts = for_model(model, self.prompts, self.prompt, self.k, self.passage_words)

    @property
    def scores_each_pair(self) -> bool:  # type: ignore[override]
        """Only the plain mode scores a pair on its own; a listwise score depends on the whole list."""
        return self.mode == "plain"

    def describe(self) -> dict[str, Any]:
        label = sentence_model_label(self.model_name)
        # a trained folder is already named after the family (checkpoints/e2rank-minilm): not e2rank-e2rank-minilm
        run_label = label if label.startswith(f"{self.name}-") else f"{self.name}-{label}"
        return {
            "reranker": self.name,
            "model": label,
            "model_path": self.model_path,
            "run_label": run_label,
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
        return self.texts.plain(query) if self.mode == "plain" else self.texts.listwise(query, passages)

    def _documents(self, passages: list[str]) -> list[str]:
        """Candidates as embedded (:meth:`perank.families.e2rank.texts.E2RankTexts.documents`)."""
        return self.texts.documents(passages)

    def score_pairs(self, pairs: Pairs) -> PairScores:
        """Each passage's cosine with its query's vector: in listwise mode built from its list, in plain mode from
        the query alone, encoded as ``dense`` encodes it (so the scores are ``dense``'s to the bit)."""
        groups = pairs.by_query()
        order = list(groups)
        texts = [self.pseudo_query(pairs.queries[qi], [pairs.passages[j] for j in groups[qi]]) for qi in order]
        plain_encoder = self.mode == "plain" and self.texts.uses_query_prompt
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
