"""PE-Rank as a reranker: every passage is ONE token, and the LLM ranks by decoding over those tokens.

``pe-rank`` (alias ``listwise-embedding``) uses the paper's embedding-only prompt; ``listwise-text-embedding``
is the same model with each passage's text written after its token (the paper's "w/ content" variant).

How a batch of queries is ranked:

1. every query's candidates (and, with ``query_embedding``, the query) are encoded and projected ONCE, in one
   batched encoder call for the whole batch of queries; windows only index into those vectors;
2. each query's sliding windows (:func:`perank.windows.sliding_windows`) are built from its CURRENT order, back
   to front; the k-th window of every query in the batch goes into ONE :func:`perank.decoding.decode_listwise`
   call (rows left padded to a common length), so the LLM always runs on a batch;
3. the window's new order is written back, and each passage remembers the probability it had when the last
   window containing it chose it.

Every window of a query begins with the same tokens (system turn, instruction, query text, up to the first
passage token). With ``reuse_prefix`` (the default) that prefix is run through the LLM once per batch of
queries (:func:`perank.decoding.prefill_prefix`) and each window runs only its own remainder, which saves about
a fifth of the prompt tokens of the embedding prompt; the rankings are the same up to float rounding.

Scores (:func:`listwise_scores`): the final rank ``r`` (1-based) of ``N`` candidates gets ``(N - r) + p``, with
``p`` that probability. The integer part keeps the ranking's order (``p`` is in [0, 1]), the fraction keeps a
trace of the model's confidence, and :func:`perank.rerankers.base.reorder` nudges the rare tie down so scores
strictly decrease.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from perank.decoding import DECODE_MODES, PromptPrefix, decode_listwise, left_pad, prefill_prefix
from perank.modeling.checkpoint import load_pe_rank
from perank.modeling.pe_rank import PERankModel
from perank.prompts import PLACEHOLDER, RANK_TOKEN, answer_prefix, messages
from perank.rerankers.base import Reranker, register, reorder
from perank.types import InputError, Request, Result
from perank.windows import sliding_windows

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
#: the checkpoint used when no ``model_path`` is given (trained by ``perank.training``)
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "pe-rank-smollm2-minilm"

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


# ---------------------------------------------------------------------------------------------- shared helpers


def default_model_path(model_path: str | Path | None) -> str:
    """``model_path`` itself, or the default checkpoint, or an error saying how to get one."""
    if model_path:
        return str(model_path)
    if DEFAULT_CHECKPOINT.exists():
        return str(DEFAULT_CHECKPOINT)
    raise InputError(
        f"no --model-path given and the default checkpoint {DEFAULT_CHECKPOINT} does not exist; train one "
        "(python -m perank.cli.train ...) or assemble an untrained one with "
        "`python -m perank.cli.assemble --llm smollm2 --encoder all-minilm-l6-v2 --output DIR` and pass "
        "--model-path DIR"
    )


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The given device, else CUDA when there is one, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``"bf16"``/``"bfloat16"``/... or a torch dtype; ``None``/``"auto"`` means the device's default."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return None
    if dtype not in _DTYPES:
        raise InputError(f"unknown dtype {dtype!r}; choose one of {', '.join(sorted(_DTYPES))} or auto")
    return _DTYPES[dtype]


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so that wall-clock timings mean something."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sanitize(text: str) -> str:
    """Remove the passage-token strings from user text: they would add tokens that have no vector."""
    return text.replace(PLACEHOLDER, " ").replace(RANK_TOKEN, " ")


def listwise_scores(n: int, probs: list[float] | None = None) -> list[float]:
    """TREC scores for ranks 1..n: ``(n - r) + p_r`` (``p_r`` = 0 when no probabilities are known)."""
    probs = probs if probs is not None else [0.0] * n
    return [float(n - r) + float(p) for r, p in enumerate(probs, start=1)]


def share(total: float, weights: list[float]) -> list[float]:
    """Split a measured time over queries in proportion to the work each did (equal split if none did)."""
    mass = float(sum(weights))
    if mass <= 0:
        return [total / len(weights)] * len(weights) if weights else []
    return [total * w / mass for w in weights]


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) while ranking, then the module's previous mode: a model being trained stays so."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


@dataclass
class QueryState:
    """One query's ranking in progress: its current order and the per-query accounting."""

    request: Request
    order: list[int]
    prob: list[float]
    windows: list[tuple[int, int]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    vectors: Tensor | None = None
    query_vector: Tensor | None = None

    @classmethod
    def start(cls, request: Request, window_size: int, step: int) -> QueryState:
        n = len(request.candidates)
        return cls(
            request=request,
            order=list(range(n)),
            prob=[1.0 if n == 1 else 0.0] * n,
            windows=sliding_windows(n, window_size, step) if n > 1 else [],
            stats={
                "latency_s": 0.0,
                "tokens_processed": 0,
                "tokens_generated": 0,
                "truncated_passages": 0,
                "windows": 0,
            },
        )

    def window(self, k: int) -> list[int]:
        """Candidate indices of this query's k-th window, in the current order."""
        start, end = self.windows[k]
        return self.order[start:end]

    def place(self, k: int, ranked: list[int], probs: list[float] | None = None) -> None:
        """Write back the k-th window's new order (positions within the window) and the choice probabilities."""
        start, end = self.windows[k]
        current = self.order[start:end]
        new = [current[j] for j in ranked]
        if sorted(new) != sorted(current):
            raise ValueError(f"query {self.request.query.qid}: window {k} ranking is not a permutation")
        self.order[start:end] = new
        if probs is not None:
            for idx, p in zip(new, probs):
                self.prob[idx] = p
        self.stats["windows"] += 1

    def result(self) -> Result:
        scores = listwise_scores(len(self.order), [self.prob[i] for i in self.order])
        return reorder(self.request, self.order, scores, self.stats)


# ---------------------------------------------------------------------------------------------- the reranker


@register("pe-rank", "listwise-embedding")
class PERankReranker(Reranker):
    """PE-Rank listwise reranking with passage-embedding tokens (see the module docstring for the batching).

    Arguments: ``model_path`` (any layout :func:`~perank.modeling.checkpoint.load_pe_rank` reads; default
    :data:`DEFAULT_CHECKPOINT`), ``model`` (an already loaded :class:`PERankModel`, e.g. during training),
    ``device``, ``dtype``, ``batch_size`` (queries whose windows share one decode batch), ``window_size``,
    ``step``, ``decode_mode`` (``greedy`` = PE-Rank, ``single-pass`` = sort by the first step's logits),
    ``encode_batch_size``, ``max_length`` (encoder tokens per passage, overriding the checkpoint's),
    ``model_base`` (base LLM of a LoRA/projector-only checkpoint), ``embedding_cache`` (path of a
    :class:`perank.embedding_cache.EmbeddingCache` file: passage embeddings reused across runs). Unknown keyword
    arguments (the pipeline passes every option) are ignored. ``reuse_prefix`` (default on) runs the prompt
    prefix the windows of a query share once; off, every window is prefilled whole (for measuring the gain).

    Per-query stats: ``latency_s`` (the batch's measured encoder and decoder time, each call's share given to
    its queries in proportion to their passages / processed tokens), ``tokens_processed`` (LLM input
    positions: non-pad prompt tokens plus fed-back passage vectors), ``tokens_generated`` (decode steps),
    ``truncated_passages`` (passages over the encoder's max length), ``windows``.
    """

    prompt_mode = "embedding"

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
        **_: Any,
    ) -> None:
        if decode_mode not in DECODE_MODES:
            raise InputError(f"unknown decode mode {decode_mode!r}; choose one of {', '.join(DECODE_MODES)}")
        if batch_size < 1 or window_size < 1 or step < 1 or encode_batch_size < 1:
            raise InputError("batch_size, window_size, step and encode_batch_size must be positive")
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
        if embedding_cache:  # a persistent passage-embedding cache (perank.embedding_cache), shared across runs
            from perank.embedding_cache import EmbeddingCache

            self.model.encoder.cache = EmbeddingCache(embedding_cache)
        if max_length:
            model.encoder.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.window_size = int(window_size)
        self.step = int(step)
        self.decode_mode = decode_mode
        self.encode_batch_size = int(encode_batch_size)
        if not isinstance(reuse_prefix, bool):
            raise InputError(f"reuse_prefix must be True or False, not {reuse_prefix!r}")
        self.reuse_prefix = reuse_prefix
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
            "window_size": self.window_size,
            "step": self.step,
            "decode_mode": self.decode_mode,
            "batch_size": self.batch_size,
            "reuse_prefix": self.reuse_prefix,
        }

    def rerank(self, requests: list[Request]) -> list[Result]:
        results: list[Result] = []
        with eval_mode(self.model):
            for start in range(0, len(requests), self.batch_size):
                results.extend(self._rerank_batch(requests[start : start + self.batch_size]))
        return results

    # ------------------------------------------------------------------ internals

    def _rerank_batch(self, requests: list[Request]) -> list[Result]:
        states = [QueryState.start(r, self.window_size, self.step) for r in requests]
        active = [s for s in states if s.windows]
        if active:
            self._encode(active)
            prefix: PromptPrefix | None = None
            for k in range(max(len(s.windows) for s in active)):
                prefix = self._decode_window(k, [s for s in active if k < len(s.windows)], prefix)
        return [s.result() for s in states]

    def _encode(self, states: list[QueryState]) -> None:
        """Encode and project every passage (and query) of the batch once; split the vectors per query."""
        model = self.model
        t0 = time.perf_counter()
        texts: list[str] = []
        for s in states:
            passages = [c.text for c in s.request.candidates]
            s.stats["truncated_passages"] = model.encoder.count_truncated(passages)
            texts.extend(passages)
        if self.spec.query_embedding:
            texts.extend(s.request.query.text for s in states)
        with torch.no_grad():
            vectors = model.embed_passages(texts, batch_size=self.encode_batch_size)
        synchronize(model.device)
        offset = 0
        for s in states:
            n = len(s.request.candidates)
            s.vectors = vectors[offset : offset + n]
            offset += n
        if self.spec.query_embedding:
            for s in states:
                s.query_vector = vectors[offset : offset + 1]
                offset += 1
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
            assert s.vectors is not None
            passages = [sanitize(s.request.candidates[i].text) for i in window]
            msgs = messages(self.spec, sanitize(s.request.query.text), passages)
            prompt = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            prompts.append(prompt + answer_prefix(self.spec))
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


@register("listwise-text-embedding")
class ListwiseTextEmbeddingReranker(PERankReranker):
    """PE-Rank with each passage's text after its embedding token (the "w/ content" prompt), same model."""

    prompt_mode = "text-embedding"
