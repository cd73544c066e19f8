"""PE-Rank as a reranker: every passage is ONE token, and the LLM ranks by decoding over those tokens.

``pe-rank`` (alias ``listwise-embedding``) uses the paper's embedding-only prompt; ``listwise-text-embedding``
is the same model with each passage's text written after its token (the paper's "w/ content" variant).

How a batch of queries is ranked:

1. every query's candidates (and, with ``query_embedding``, the query) are encoded and projected ONCE, in one
   batched encoder call for the whole batch of queries; windows only index into those vectors;
2. the sliding-window loop of :class:`perank.ranking.sliding_window.WindowReranker` hands the k-th window of every
   query in the batch to :meth:`PERankReranker.rank_windows`, which ranks them in ONE
   :func:`perank.families.pe_rank.decoding.decode_listwise` call (rows left padded to a common length);
3. the window's new order is written back, and each passage remembers the probability it had when the last
   window containing it chose it (scores: :func:`perank.ranking.sliding_window.listwise_scores`).

Every window of a query begins with the same tokens (system turn, instruction, query text, up to the first
passage token). With ``reuse_prefix`` (the default) that prefix is run through the LLM once per batch of
queries (:func:`perank.families.pe_rank.decoding.prefill_prefix`) and each window runs only its own
remainder, which saves about a fifth of the prompt tokens of the embedding prompt; the rankings are the same
up to float rounding.

``decode_engine`` chooses how the greedy decode steps run (:mod:`perank.families.pe_rank.fast_decode`): ``auto``
(CUDA graphs over a static KV cache on CUDA, transformers' dynamic cache on CPU), ``eager``, ``static`` or
``graph``. It changes speed, not rankings, so it is a volatile setting (not part of a run's name or identity).
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from perank.backends.runtime import eval_mode, parse_dtype, resolve_device, synchronize
from perank.datasets import REPO_ROOT
from perank.families.pe_rank.checkpoint import load_pe_rank
from perank.families.pe_rank.decoding import DECODE_MODES, PromptPrefix, decode_listwise, left_pad, prefill_prefix
from perank.families.pe_rank.fast_decode import build_runner, resolve_engine
from perank.families.pe_rank.model import PERankModel
from perank.families.pe_rank.prompts import window_prompt
from perank.ranking.budgets import TextBudgets, TokenBudget
from perank.ranking.sliding_window import QueryState, WindowReranker, share
from perank.types import InputError, Request

logger = logging.getLogger(__name__)

#: the checkpoint used when no ``model_path`` is given (trained by ``recipes/pe_rank/train_small.sh``)
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "pe-rank-smollm2-minilm"


def default_model_path(model_path: str | Path | None) -> str:
    """``model_path`` (a local folder as its absolute path, so a run records the same model however it was
    named), or the default checkpoint, or an error saying how to get one."""
    if model_path:
        local = Path(model_path)
        return str(local.resolve()) if local.exists() else str(model_path)
    if DEFAULT_CHECKPOINT.exists():
        return str(DEFAULT_CHECKPOINT)
    raise InputError(
        f"no --model-path given and the default checkpoint {DEFAULT_CHECKPOINT} does not exist; train one "
        "(python -m perank.cli.train ...) or assemble an untrained one with "
        "`python -m perank.cli.assemble --llm smollm2 --encoder all-minilm-l6-v2 --output DIR` and pass "
        "--model-path DIR"
    )


@dataclass
class PassageState(QueryState):
    """A query's window state plus its passages' projected vectors (and the query's, when the prompt has it)."""

    vectors: Tensor | None = None
    query_vector: Tensor | None = None


class PERankReranker(WindowReranker):
    """PE-Rank listwise reranking with passage-embedding tokens (see the module docstring for the batching).

    Arguments: ``model_path`` (any layout :func:`~perank.families.pe_rank.checkpoint.load_pe_rank` reads; default
    :data:`DEFAULT_CHECKPOINT`), ``model`` (an already loaded :class:`PERankModel`, e.g. during training),
    ``device``, ``dtype``, ``batch_size`` (queries whose windows share one decode batch), ``window_size``,
    ``step``, ``decode_mode`` (``greedy`` = PE-Rank, ``single-pass`` = sort by the first step's logits),
    ``encode_batch_size``, ``max_length`` (encoder tokens per passage, overriding the checkpoint's),
    ``model_base`` (base LLM of a LoRA/projector-only checkpoint), ``embedding_cache`` (path of a
    :class:`perank.backends.embedding_cache.EmbeddingCache` file: passage embeddings reused across runs).
    ``reuse_prefix`` (default on) runs the prompt prefix the windows of a query share once; off, every window
    is prefilled whole (for measuring the gain). ``decode_engine`` (``auto``, ``eager``, ``static``, ``graph``; see
    the module docstring) runs the greedy decode steps; ``graph`` needs CUDA.

    Per-query stats: ``latency_s`` (the batch's measured encoder and decoder time, each call's share given to
    its queries in proportion to their passages / processed tokens), ``tokens_processed`` (LLM input
    positions: non-pad prompt tokens plus fed-back passage vectors), ``tokens_generated`` (decode steps),
    ``truncated_passages`` (passages over the encoder's max length), ``truncated_queries``, ``windows``,
    ``windows_unchanged`` (decoded in their input order).
    """

    name = "pe-rank"

    prompt_mode = "embedding"
    #: the decode engine changes speed, not rankings
    volatile_settings = WindowReranker.volatile_settings | {"decode_engine"}

    def __init__(
        self,
        model_path: str | None = None,
        *,
        model: PERankModel | None = None,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        batch_size: int = 8,
        window_size: int = 20,
        step: int = 10,
        decode_mode: str = "greedy",
        encode_batch_size: int = 64,
        max_length: int | None = None,
        model_base: str | None = None,
        trust_remote_code: bool = False,
        embedding_cache: str | None = None,
        reuse_prefix: bool = True,
        decode_engine: str = "auto",
    ) -> None:
        if decode_mode not in DECODE_MODES:
            raise InputError(f"unknown decode mode {decode_mode!r}; choose one of {', '.join(DECODE_MODES)}")
        # before loading: an unknown engine, or 'graph' without CUDA, fails fast
        resolve_engine(decode_engine, model.device if model is not None else resolve_device(device))
        self.configure_windows(batch_size, window_size, step)
        if isinstance(encode_batch_size, bool) or not isinstance(encode_batch_size, int) or encode_batch_size < 1:
            raise InputError(f"encode_batch_size must be a positive integer, got {encode_batch_size!r}")
        if model is None:
            self.model_path = default_model_path(model_path)
            model = load_pe_rank(
                self.model_path,
                model_base=model_base,
                device=resolve_device(device),
                dtype=parse_dtype(dtype),
                trust_remote_code=trust_remote_code,
            )
        else:
            self.model_path = str(model_path or model.config.llm_name)
        self.model = model
        if (
            embedding_cache
        ):  # a persistent passage-embedding cache (perank.backends.embedding_cache), shared across runs
            from perank.backends.embedding_cache import EmbeddingCache

            self.model.encoder.cache = EmbeddingCache(embedding_cache)
        if max_length:
            model.encoder.max_length = int(max_length)
        self.decode_mode = decode_mode
        self.encode_batch_size = encode_batch_size
        if not isinstance(reuse_prefix, bool):
            raise InputError(f"reuse_prefix must be True or False, not {reuse_prefix!r}")
        self.reuse_prefix = reuse_prefix
        self.runner = build_runner(decode_engine, model)  # None: eager (a new dynamic cache per call)
        self.decode_engine = "eager" if self.runner is None else "graph" if self.runner.graphs else "static"
        self.spec = replace(model.prompt_spec, mode=self.prompt_mode)  # the checkpoint's query options

    def describe(self) -> dict[str, Any]:
        cfg = self.model.config
        return {
            "reranker": self.name,
            "model_path": self.model_path,
            "llm": cfg.llm_name,
            "encoder": cfg.encoder_name,
            "prompt_mode": self.spec.mode,
            "query_embedding": self.spec.query_embedding,
            "query_embedding_position": self.spec.query_embedding_position,
            "query_text": self.spec.query_text,
            "relevance_feature": cfg.relevance_feature,
            "window_size": self.window_size,
            "step": self.step,
            "decode_mode": self.decode_mode,
            "encoder_max_length": self.model.encoder.max_length,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "batch_size": self.batch_size,
            "reuse_prefix": self.reuse_prefix,
            "decode_engine": self.decode_engine,
        }

    def text_budgets(self) -> TextBudgets:
        """The query: the encoder's ``max_length`` (256 for the shipped checkpoint, 512 for the released ones),
        the budget the PE-Rank recipe gives every text it encodes, here in the LLM's tokens because the query's
        text is written into every window's prompt (twice); its vector is encoded from the same cut text. A
        passage: the encoder's ``max_length`` (a pre-cut; the encoder truncates and counts), or, when its text is
        in the prompt too (``listwise-text-embedding``), its share of the LLM's context, ``context // window_size``
        tokens, cut by the core (as ``listwise-text``)."""
        encoder = self.model.encoder
        passage: TokenBudget | None = TokenBudget(encoder.tokenizer, encoder.max_length, truncated_by_model=True)
        if self.spec.mode != "embedding":
            context = self.model.lm.context_length()
            passage = TokenBudget(self.model.tokenizer, max(1, context // self.window_size)) if context else None
        return TextBudgets(query=TokenBudget(self.model.tokenizer, encoder.max_length), passage=passage)

    # ------------------------------------------------------------------ the window strategy's hooks

    def inference(self) -> AbstractContextManager[Any]:
        return eval_mode(self.model)

    def start_state(self, request: Request) -> PassageState:
        return PassageState.start(request, self.window_size, self.step)

    def prepare(self, states: list[QueryState]) -> None:
        """Encode and project every passage (and query) of the batch once; split the vectors per query."""
        self._encode([s for s in states if isinstance(s, PassageState)])

    def rank_windows(self, k: int, states: list[QueryState], scratch: dict[str, Any]) -> None:
        """Rank the k-th window of every query in one batched decode call (the prompt prefix's KV cache, when
        reused, is kept in ``scratch`` for the next window)."""
        scratch["prefix"] = self._decode_window(k, states, scratch.get("prefix"))

    # ------------------------------------------------------------------ internals

    def _encode(self, states: list[PassageState]) -> None:
        model = self.model
        t0 = time.perf_counter()
        passages_of: list[list[str]] = []
        for s in states:
            passages = [c.text for c in s.request.candidates]
            s.stats["truncated_passages"] = model.encoder.count_truncated(passages)
            passages_of.append(passages)
        queries = [s.request.query.text for s in states]
        with torch.no_grad():
            vectors, query_vectors = model.embed_candidates(passages_of, queries, batch_size=self.encode_batch_size)
        for s, v, q in zip(states, vectors, query_vectors):
            s.vectors, s.query_vector = v, q
        synchronize(model.device)
        elapsed = time.perf_counter() - t0
        for s, t in zip(states, share(elapsed, [len(s.request.candidates) for s in states])):
            s.stats["latency_s"] += t

    def _decode_window(self, k: int, states: list[QueryState], prefix: PromptPrefix | None) -> PromptPrefix | None:
        """Rank the k-th window of every query in one batched decode call; returns the prompt prefix's cache
        (``prefix`` itself when the rows' prefixes are unchanged, else a new one; None without reuse)."""
        model = self.model
        tokenizer = model.tokenizer
        t0 = time.perf_counter()
        prompts: list[str] = []
        prompt_vectors: list[Tensor] = []
        cand_vectors: list[Tensor] = []
        for s in states:
            window = s.window(k)
            assert isinstance(s, PassageState) and s.vectors is not None
            passages = [s.request.candidates[i].text for i in window]
            prompts.append(window_prompt(tokenizer, self.spec, s.request.query.text, passages))
            cands = s.vectors[window]
            cand_vectors.append(cands)
            prompt_vectors.append(cands if s.query_vector is None else torch.cat([cands, s.query_vector]))
        token_ids: list[list[int]] = tokenizer(prompts, add_special_tokens=False)["input_ids"]
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        prefix_tokens = [0] * len(states)
        if self.reuse_prefix:
            cut = [self._prefix_length(ids) for ids in token_ids]
            heads = tuple(tuple(ids[:c]) for ids, c in zip(token_ids, cut))
            if prefix is None or prefix.token_ids != heads:
                prefix = prefill_prefix(model, [list(h) for h in heads], pad_id)
                prefix_tokens = list(cut)  # this window pays for the prefix; later ones reuse it
            token_ids = [ids[c:] for ids, c in zip(token_ids, cut)]
        input_ids, attention_mask = left_pad(token_ids, pad_id)
        outputs = decode_listwise(
            model,
            input_ids,
            attention_mask,
            prompt_vectors,
            cand_vectors,
            mode=self.decode_mode,
            prefix=prefix,
            runner=self.runner,
        )
        elapsed = time.perf_counter() - t0
        work = [o.tokens_processed + p for o, p in zip(outputs, prefix_tokens)]
        for s, out, w, t in zip(states, outputs, work, share(elapsed, work)):
            s.place(k, out.order, out.step_probs)
            s.stats["tokens_processed"] += w
            s.stats["tokens_generated"] += out.tokens_generated
            s.stats["latency_s"] += t
        return prefix

    def _prefix_length(self, ids: list[int]) -> int:
        """Tokens before the first passage token: the part of the prompt all windows of a query share."""
        placeholder = self.model.placeholder_id
        if placeholder not in ids:
            raise ValueError("a window prompt without any passage token; the prompt template is broken")
        return ids.index(placeholder)


class ListwiseTextEmbeddingReranker(PERankReranker):
    """PE-Rank with each passage's text after its embedding token (the "w/ content" prompt), same model."""

    name = "listwise-text-embedding"

    prompt_mode = "text-embedding"
