"""The ``listconranker`` reranker: ranks each query's whole candidate list with ListConRanker.

Two modes: ``iterative`` (the published default: rounds that drop the weakest passages, see
:mod:`.iterative`) and ``single`` (one pass over the whole list, the published ``traditional_inference``).
Every text of a call is embedded once, even in iterative mode: the embedder sees each text alone, so a round
only re-runs the list transformer over the surviving rows (the published code re-embeds the survivors every
round; the scores are the same). Rounds of all queries in a call run as one batched list-transformer pass.

Besides ranking, the peer's API: :meth:`ListConRankerReranker.compute_score` (lists ``[query, p1, ..., pn]`` ->
one score list each) and :meth:`ListConRankerReranker.iterative_inference` (one list -> its final scores).

Per-query stats: ``latency_s`` (the call's time split evenly), ``tokens_processed`` (embedder tokens of the
texts embedded for it, after truncation; texts found in the embedding cache cost none), ``tokens_generated``
(0), ``model_calls`` (list-transformer passes over its list), ``truncated_passages`` (passages longer than
``max_length`` tokens) and, with a cache, ``embedding_cache_hits``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from perank.backends.runtime import eval_mode, parse_dtype, resolve_device, synchronize
from perank.families.listconranker.checkpoint import DEFAULT_CHECKPOINT, load_model
from perank.families.listconranker.iterative import IterativeState
from perank.ranking.base import BaseReranker, fit_passage, fit_query, reorder
from perank.ranking.budgets import TextBudgets, TokenBudget, special_tokens
from perank.ranking.inputs import check_text
from perank.types import InputError, Request, Result

MODES = ("iterative", "single")
#: most list rows per list-transformer pass (a memory bound; the pass is cheap next to the embedder)
MAX_LIST_ROWS = 8192


def check_lists(lists: Any) -> list[list[str]]:
    """``lists`` as ``[[query, p1, ...], ...]``; anything else is an :class:`InputError` naming the entry."""
    if isinstance(lists, str) or not isinstance(lists, Sequence):
        raise InputError("compute_score takes a list of lists [query, passage1, passage2, ...]")
    out = []
    for i, item in enumerate(lists):
        if isinstance(item, str) or not isinstance(item, Sequence) or not item:
            raise InputError(f"lists[{i}]: expected a list [query, passage1, ...], got {type(item).__name__}")
        out.append([check_text(text, f"lists[{i}][{j}]") for j, text in enumerate(item)])
    return out


@dataclass
class Encoded:
    """The pooled embeddings of a call's texts, and what embedding them cost per text."""

    pooled: Tensor  # [N, d_embed] on the model's device, in its dtype
    tokens: list[int]  # embedder tokens spent on text i in this call (0: cached, or a repeat run once)
    truncated: list[bool]  # text i is longer than max_length tokens
    cache_hits: list[bool]


class ListConRankerReranker(BaseReranker):
    """ListConRanker over whole candidate lists (see the module docstring).

    ``model_path``: a ListConRanker folder or hub id (``ByteDance/ListConRanker``), or a perank residual-mode
    folder (its config may name the embedder it reads); ``None`` is the small model trained here
    (``checkpoints/listconranker-minilm``). ``mode``: ``iterative`` or ``single``. ``dtype``:
    fp32 on CPU; on CUDA fp16 by default (as published), bf16 or fp32 on request. ``batch_size``: texts per
    embedder pass. ``max_length``: tokens per text (default: the checkpoint's, 512 published).
    ``embedding_cache``: a :class:`perank.backends.embedding_cache.EmbeddingCache` file for the pooled
    embeddings (keyed by the embedder's weights file, max length and dtype).
    """

    name = "listconranker"

    def __init__(
        self,
        model_path: str | None = None,
        mode: str = "iterative",
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 64,
        max_length: int | None = None,
        embedding_cache: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        if mode not in MODES:
            raise InputError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
        if batch_size < 1:
            raise InputError(f"batch_size {batch_size}: must be at least 1")
        self.mode = mode
        self.batch_size = int(batch_size)
        self.device = resolve_device(device)
        on_cuda = self.device.type == "cuda"
        torch_dtype = parse_dtype(dtype) or (torch.float16 if on_cuda else torch.float32)
        if not on_cuda and torch_dtype != torch.float32:
            raise InputError(f"dtype {dtype}: fp16/bf16 run on CUDA only; on CPU ListConRanker runs in float32")
        self.model = load_model(model_path, self.device, torch_dtype, trust_remote_code=trust_remote_code)
        self.model_path = model_path or str(DEFAULT_CHECKPOINT)
        self.max_length = self._checked_length(max_length)
        self.cache: Any = None
        self.cache_prefix = ""
        if embedding_cache:
            from perank.backends.embedding_cache import EmbeddingCache

            self.cache = EmbeddingCache(embedding_cache)
            self.cache_prefix = self._cache_prefix()

    def describe(self) -> dict[str, Any]:
        return {
            "reranker": self.name,
            "model_path": self.model_path,
            "mode": self.mode,
            "max_length": self.max_length,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "batch_size": self.batch_size,
            "embedding_cache": str(self.cache.path) if self.cache is not None else None,
        }

    def text_budgets(self) -> TextBudgets:
        """mteb's ListConRanker tokenizes every text, the query too, at ``max_length`` (512) with its special
        tokens."""
        length = max(1, self.max_length - special_tokens(self.model.tokenizer))
        return TextBudgets(
            query=TokenBudget(self.model.tokenizer, length, truncated_by_model=True),
            passage=TokenBudget(self.model.tokenizer, length, truncated_by_model=True),
        )

    def _fitted(self, lists: Sequence[Sequence[str]]) -> list[list[str]]:
        """The peer API's lists checked and fitted to the budgets, as ``rerank`` fits requests."""
        budgets = self.budgets()
        return [
            [fit_query(item[0], budgets.query)[0], *(fit_passage(p, budgets.passage)[0] for p in item[1:])]
            for item in check_lists(lists)
        ]

    # ------------------------------------------------------------------ the peer's API

    def compute_score(self, lists: Sequence[Sequence[str]], max_length: int | None = None) -> list[list[float]]:
        """Scores of each list ``[query, p1, ..., pn]`` in one pass over the whole list: one list of n scores in
        (0, 1) per input list (the published code returns a flat ``[score]`` when there is one passage in
        total; here it is always one list per list). A list holding only its query gets ``[]``."""
        checked = self._fitted(lists)
        if not checked:
            return []
        length = self._checked_length(max_length) if max_length is not None else self.max_length
        with self._inference():
            encoded = self._encode([t for item in checked for t in item], length)
            rows, offset = [], 0
            for item in checked:
                rows.append(encoded.pooled[offset : offset + len(item)])
                offset += len(item)
            return self._score_lists(rows)

    def iterative_inference(self, query_passages: Sequence[str], max_length: int | None = None) -> list[float]:
        """Final scores of one list ``[query, p1, ..., pn]`` by the published iterative inference (input order)."""
        (item,) = self._fitted([query_passages])
        length = self._checked_length(max_length) if max_length is not None else self.max_length
        with self._inference():
            encoded = self._encode(item, length)
            state = IterativeState(len(item) - 1)
            self._run_rounds([state], [encoded.pooled])
        return state.final

    # ------------------------------------------------------------------ ranking

    def rerank_within_budget(self, requests: list[Request]) -> list[Result]:
        if not requests:
            return []
        start = time.perf_counter()
        texts = [t for r in requests for t in [r.query.text, *(c.text for c in r.candidates)]]
        with self._inference():
            encoded = self._encode(texts, self.max_length)
            spans, offset = [], 0
            for r in requests:
                spans.append(range(offset, offset + 1 + len(r.candidates)))
                offset += 1 + len(r.candidates)
            rows = [encoded.pooled[s.start : s.stop] for s in spans]
            if self.mode == "single":
                finals = self._score_lists(rows)
                calls = [int(bool(scores)) for scores in finals]
            else:
                states = [IterativeState(len(r.candidates)) for r in requests]
                self._run_rounds(states, rows)
                finals, calls = [s.final for s in states], [s.calls for s in states]
        synchronize(self.device)
        latency = (time.perf_counter() - start) / len(requests)
        results = []
        for request, span, final, n_calls in zip(requests, spans, finals, calls):
            stats: dict[str, Any] = {
                "latency_s": latency,
                "tokens_processed": sum(encoded.tokens[i] for i in span),
                "tokens_generated": 0,
                "model_calls": n_calls,
                "truncated_passages": sum(encoded.truncated[i] for i in span[1:]),
            }
            if self.cache is not None:
                stats["embedding_cache_hits"] = sum(encoded.cache_hits[i] for i in span)
            order = sorted(range(len(final)), key=lambda j: (-final[j], j))  # ties keep first-stage order
            results.append(reorder(request, order, [final[j] for j in order], stats))
        return results

    # ------------------------------------------------------------------ internals

    def _inference(self) -> ExitStack:
        """Eval mode and no autograd while scoring (a model being trained stays in training mode after)."""
        stack = ExitStack()
        stack.enter_context(eval_mode(self.model))
        stack.enter_context(torch.inference_mode())
        return stack

    def _checked_length(self, max_length: int | None) -> int:
        if max_length is None:
            max_length = self.model.config.max_length
        limit = getattr(self.model.embedder.config, "max_position_embeddings", None)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise InputError(f"max_length {max_length!r}: must be an integer of at least 2 (room for [CLS] [SEP])")
        if limit is not None and max_length > limit:
            raise InputError(f"max_length {max_length}: the embedder has only {limit} positions")
        return max_length

    def _cache_prefix(self) -> str:
        """What identifies the pooled embeddings (with the max length, added per call): the embedder's weights
        file (path, size, mtime: a retrained folder at the same path gets new keys) and the dtype."""
        folder = Path(self.model.embedder.config.name_or_path or self.model.name_or_path)
        stamp = ""
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (folder / name).is_file():
                st = (folder / name).stat()
                stamp = f"{(folder / name).resolve()}:{st.st_size}:{st.st_mtime_ns}"
                break
        dtype = str(self.model.dtype).removeprefix("torch.")
        return f"listconranker-embedder|{stamp or folder}|pooling=mean|dtype={dtype}"

    def _encode(self, texts: list[str], max_length: int) -> Encoded:
        """Pooled embeddings of ``texts`` in length-sorted batches of ``batch_size``. With the cache, cached texts
        are not run, and a text repeated in the call is run once (``source[i]``: whose vector text i takes)."""
        model = self.model
        # one token over the limit tells whether a text is cut, without keeping every token of a long one
        full = model.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=max_length + 1)["input_ids"]
        truncated = [len(ids) > max_length for ids in full]
        lengths = [min(len(ids), max_length) for ids in full]
        pooled = torch.empty(len(texts), model.config.embedder_dim, dtype=model.dtype, device=model.device)
        prefix = f"{self.cache_prefix}|max_length={max_length}"
        hits = [False] * len(texts)
        source = list(range(len(texts)))
        if self.cache is not None:
            first: dict[str, int] = {}
            for i, (text, vec) in enumerate(zip(texts, self.cache.get_many(prefix, texts))):
                if vec is not None:
                    pooled[i] = torch.from_numpy(vec).to(device=model.device, dtype=model.dtype)
                    hits[i] = True
                else:
                    source[i] = first.setdefault(text, i)
        todo = [i for i in range(len(texts)) if not hits[i] and source[i] == i]
        order = sorted(todo, key=lambda i: (-lengths[i], i))
        for s in range(0, len(order), self.batch_size):
            idx = order[s : s + self.batch_size]
            pooled[idx] = model.embed(model.tokenize([texts[i] for i in idx], max_length))
        for i in range(len(texts)):
            if not hits[i] and source[i] != i:
                pooled[i] = pooled[source[i]]
        if self.cache is not None and todo:
            self.cache.put_many(prefix, [texts[i] for i in todo], pooled[todo].float().cpu())
        run = set(todo)
        tokens = [lengths[i] if i in run else 0 for i in range(len(texts))]
        return Encoded(pooled, tokens, truncated, hits)

    def _score_lists(self, rows: list[Tensor]) -> list[list[float]]:
        """Scores of the passages of each list of pooled rows ``[q, p1..pn]``, in passes of whole lists."""
        out: list[list[float]] = [[] for _ in rows]
        todo = [i for i, r in enumerate(rows) if r.shape[0] > 1]
        chunk: list[int] = []
        for i in [*todo, None]:
            size = sum(rows[j].shape[0] for j in chunk)
            if chunk and (i is None or size + rows[i].shape[0] > MAX_LIST_ROWS):
                lengths = [rows[j].shape[0] for j in chunk]
                flat = self.model.scores(torch.cat([rows[j] for j in chunk]), lengths).cpu().tolist()
                offset = 0
                for j, n in zip(chunk, lengths):
                    out[j] = flat[offset : offset + n - 1]
                    offset += n - 1
                chunk = []
            if i is not None:
                chunk.append(i)
        return out

    def _run_rounds(self, states: list[IterativeState], rows: list[Tensor]) -> None:
        """Advance every query's iterative rounds together until all are done (one batched pass per round)."""
        while True:
            active = [k for k, s in enumerate(states) if not s.done]
            if not active:
                return
            lists = [rows[k][[0, *(p + 1 for p in states[k].pending)]] for k in active]
            for k, scores in zip(active, self._score_lists(lists)):
                states[k].update(scores)
