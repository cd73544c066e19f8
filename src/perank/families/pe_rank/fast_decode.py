"""A faster greedy decode for PE-Rank: a static KV cache, and on CUDA each decode step replayed from a CUDA graph.

Why: on a GPU, greedy PE-Rank at batch 1 is launch-bound. A 7B model's single-position forward pass is a few
hundred small kernels, and launching them from Python costs ~5x the time the GPU needs to read the weights
(benchmarks/README.md, H100 record). A CUDA graph launches a whole captured step at once. Capturing needs
every tensor the step touches at a fixed address and of a fixed shape, which transformers' dynamic cache (it
grows by one column per step) is not; its ``StaticCache`` is, so:

- every forward pass writes into one ``StaticCache`` of ``capacity`` columns (the shared prompt prefix copied
  in, then each window's remainder, then one column per step: the same left-padded layout as the eager path);
- the attention mask is an additive 4-D ``[B, 1, q, capacity]`` mask that this module builds (transformers
  passes a 4-D mask through untouched), so unused columns are masked and nothing in a step reads a host value;
- the step's inputs (fed-back vector, positions, mask) live in static buffers written before each replay.

``capacity`` is the needed length with headroom, rounded up, and kept per batch size: the next windows and
queries of the same batch size reuse the cache and the captured graph (the GPU test counts captures), and a
longer prompt allocates a bigger cache and captures once more.

Engines (the ``pe-rank`` reranker's ``decode_engine`` option): ``eager`` (transformers' dynamic cache,
:class:`perank.families.pe_rank.decoding.EagerRunner`), ``static`` (this module without graphs: runs on CPU,
which is how it is tested against the brute-force reference), ``graph`` (static + CUDA graphs; CUDA only) and
``auto`` (``graph`` on CUDA, ``eager`` elsewhere). All give the same rankings up to float rounding; single pass
has no decode steps and always runs eagerly. The engines need an attention kernel that takes an additive 4-D
mask (``sdpa`` or ``eager``); with flash-attention ``auto`` stays eager.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from perank.families.pe_rank.decoding import EagerRunner, PromptPrefix
from perank.types import InputError

if TYPE_CHECKING:
    from perank.families.pe_rank.model import PERankModel

logger = logging.getLogger(__name__)

DECODE_ENGINES: tuple[str, ...] = ("auto", "eager", "static", "graph")
#: attention kernels that accept the additive 4-D mask the static cache needs
MASKED_ATTENTION = ("sdpa", "eager")


def attention_kernel(model: PERankModel) -> str:
    """The LLM's attention implementation (transformers keeps it on the config and exposes no public getter)."""
    return str(getattr(model.llm.config, "_attn_implementation", None) or "sdpa")


def resolve_engine(engine: str, device: torch.device, kernel: str = "sdpa") -> str:
    """``auto`` made concrete for a device and attention kernel; an engine they cannot run is an error."""
    if engine not in DECODE_ENGINES:
        raise InputError(f"unknown decode_engine {engine!r}; choose one of {', '.join(DECODE_ENGINES)}")
    if engine == "auto":
        return "graph" if device.type == "cuda" and kernel in MASKED_ATTENTION else "eager"
    if engine == "graph" and device.type != "cuda":
        raise InputError(
            f"decode_engine 'graph' replays CUDA graphs and needs a CUDA device, but the model is on {device}; "
            "use 'static' (the same static cache without graphs) or 'eager'"
        )
    if engine in ("static", "graph") and kernel not in MASKED_ATTENTION:
        raise InputError(
            f"decode_engine {engine!r} needs the sdpa or eager attention kernel, but the LLM uses {kernel!r}; "
            "use decode_engine 'eager'"
        )
    return engine


def static_cache_supported(model: PERankModel) -> bool:
    """Whether the installed transformers' ``StaticCache`` keeps each layer's length in a device tensor (what a
    replayed step needs to advance by itself; transformers 5.2x, as pinned in requirements.txt)."""
    from transformers import StaticCache

    cache = StaticCache(config=model.llm.config, max_cache_len=8)
    return all(isinstance(getattr(layer, "cumulative_length", None), Tensor) for layer in cache.layers)


def build_runner(engine: str, model: PERankModel) -> StaticDecoder | None:
    """The decode runner for ``engine`` (None for eager: ``decode_listwise`` then makes its own each call)."""
    resolved = resolve_engine(engine, model.device, attention_kernel(model))
    if resolved == "eager":
        return None
    if not static_cache_supported(model):
        if engine == "auto":
            logger.info("this transformers' StaticCache cannot be replayed; decoding eagerly")
            return None
        raise InputError(
            f"decode_engine {engine!r} needs a transformers whose StaticCache tracks its length on the device "
            "(5.2x, as in requirements.txt); use decode_engine 'eager'"
        )
    return StaticDecoder(model, graphs=resolved == "graph")


@dataclass
class StaticSlot:
    """One static cache and the step's input/output buffers, for one batch size (and a captured graph)."""

    cache: Any
    capacity: int
    inputs: Tensor  # [B, 1, d]: the vector fed back at this step
    position: Tensor  # [B, 1]: its rotary position
    step_mask: Tensor  # [B, 1, 1, capacity]: additive mask of the step's query (0 = attend)
    hidden: Tensor  # [B, d]: the step's last final hidden state
    graph: Any = None  # torch.cuda.CUDAGraph once captured; False when capture failed (steps then run eagerly)
    column: int = 0  # the cache column the next step writes


class StaticDecoder:
    """A :class:`~perank.families.pe_rank.decoding.DecodeRunner` over a static KV cache, optionally with graphs.

    Held by the reranker across calls (its caches and graphs are reused); not for concurrent use.
    ``captures`` counts the CUDA graphs captured, ``capture_failures`` the captures that failed and fell back
    to running the static steps eagerly (with a warning).
    """

    def __init__(self, model: PERankModel, graphs: bool, headroom: float = 1.25, align: int = 64) -> None:
        if graphs and model.device.type != "cuda":
            raise InputError(f"CUDA graphs need a CUDA device, not {model.device}")
        self.model = model
        self.graphs = graphs
        self.headroom = headroom
        self.align = align
        self.captures = 0
        self.capture_failures = 0
        self._slots: dict[int, StaticSlot] = {}
        self._slot: StaticSlot | None = None
        self._eager: EagerRunner | None = None  # this call's fallback (a model whose window is shorter than needed)

    # ------------------------------------------------------------------ the DecodeRunner protocol

    def prefill(
        self, embeds: Tensor, attention_mask: Tensor, position_ids: Tensor, prefix: PromptPrefix | None, steps: int
    ) -> Tensor:
        batch, width = attention_mask.shape
        slot = self._slot_for(batch, width + steps, embeds)
        self._slot, self._eager = slot, None
        if slot is None:
            self._eager = EagerRunner(self.model)
            return self._eager.prefill(embeds, attention_mask, position_ids, prefix, steps)
        slot.cache.reset()
        if prefix is not None:  # the shared prefix's keys and values into the first columns
            for layer_idx, layer in enumerate(prefix.cache.layers):
                slot.cache.update(layer.keys, layer.values, layer_idx)
        allowed = torch.zeros(batch, slot.capacity, dtype=torch.bool, device=embeds.device)
        allowed[:, :width] = attention_mask.bool()
        fill = torch.finfo(embeds.dtype).min
        slot.step_mask.copy_(additive_mask(allowed[:, None, None, :], fill, embeds.dtype))
        columns = torch.arange(slot.capacity, device=embeds.device)
        queries = torch.arange(width - embeds.shape[1], width, device=embeds.device)
        causal = columns[None, :] <= queries[:, None]  # [T, capacity]
        mask = additive_mask(allowed[:, None, None, :] & causal[None, None], fill, embeds.dtype)
        out = self.model.decoder()(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=position_ids,
            past_key_values=slot.cache,
            use_cache=True,
        )
        slot.position.copy_(position_ids[:, -1:])
        slot.column = width
        return out.last_hidden_state[:, -1]

    def step(self, inputs: Tensor) -> Tensor:
        if self._eager is not None:
            return self._eager.step(inputs)
        slot = self._slot
        assert slot is not None, "step() before prefill()"
        if slot.column >= slot.capacity:
            raise RuntimeError(f"static cache full ({slot.capacity} columns): more steps than prefill() was told")
        slot.inputs.copy_(inputs)
        slot.position.add_(1)
        slot.step_mask[:, :, :, slot.column] = 0
        slot.column += 1
        if self.graphs and slot.graph is None:
            self._capture(slot)
        if slot.graph:
            slot.graph.replay()
        else:
            self._forward(slot)
        return slot.hidden.clone()

    # ------------------------------------------------------------------ internals

    def _slot_for(self, batch: int, needed: int, like: Tensor) -> StaticSlot | None:
        """This batch size's slot, grown (a new cache, a new graph) when ``needed`` columns do not fit.

        None when the LLM cannot hold ``needed`` columns in every layer (a sliding window shorter than the
        sequence, whose static layers behave differently): that call then runs eagerly.
        """
        from transformers import StaticCache

        slot = self._slots.get(batch)
        if slot is not None and slot.capacity >= needed and slot.inputs.dtype == like.dtype:
            return slot
        self._slots.pop(batch, None)  # free the old cache and graph before allocating the next
        capacity = -(-int(needed * self.headroom) // self.align) * self.align
        cache = StaticCache(config=self.model.llm.config, max_cache_len=capacity)
        if any(layer.get_max_length() < capacity for layer in cache.layers):
            logger.info("the LLM's sliding window is shorter than %d columns: decoding this call eagerly", capacity)
            return None
        dim, device, dtype = like.shape[-1], like.device, like.dtype
        slot = StaticSlot(
            cache=cache,
            capacity=capacity,
            inputs=torch.zeros(batch, 1, dim, device=device, dtype=dtype),
            position=torch.zeros(batch, 1, dtype=torch.long, device=device),
            step_mask=torch.zeros(batch, 1, 1, capacity, device=device, dtype=dtype),
            hidden=torch.zeros(batch, dim, device=device, dtype=dtype),
        )
        if self.graphs and any(getattr(layer, "is_sliding", False) for layer in cache.layers):
            slot.graph = False  # sliding layers keep a host-side length that a replayed graph would not advance
        self._slots[batch] = slot
        return slot

    def _forward(self, slot: StaticSlot) -> None:
        """One decode step from the static buffers into ``slot.hidden`` (what the CUDA graph captures)."""
        out = self.model.decoder()(
            inputs_embeds=slot.inputs,
            attention_mask=slot.step_mask,
            position_ids=slot.position,
            past_key_values=slot.cache,
            use_cache=True,
        )
        slot.hidden.copy_(out.last_hidden_state[:, -1])

    def _capture(self, slot: StaticSlot) -> None:
        """Capture :meth:`_forward` as a CUDA graph, after warm-up runs on a side stream (lazy kernel setup).

        A forward pass writes the step's keys and values and advances each layer's length; the warm-up runs
        are undone (the lengths restored) so that the first replay writes the step for real. A capture that
        fails leaves the slot graph-less: its steps then run eagerly on the same static cache.
        """
        lengths = [layer.cumulative_length.clone() for layer in slot.cache.layers]

        def restore() -> None:
            for layer, length in zip(slot.cache.layers, lengths):
                layer.cumulative_length.copy_(length)

        device = slot.inputs.device
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        try:
            with torch.cuda.stream(side):
                for _ in range(2):
                    self._forward(slot)
                    restore()
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._forward(slot)
        except RuntimeError as exc:
            torch.cuda.synchronize(device)
            restore()
            self.capture_failures += 1
            slot.graph = False
            logger.warning("CUDA graph capture failed (%s); decoding with the static cache, without graphs", exc)
            return
        restore()
        slot.graph = graph
        self.captures += 1


def additive_mask(allowed: Tensor, fill: float, dtype: torch.dtype) -> Tensor:
    """A boolean attend/skip mask as the additive float mask attention kernels add to their scores."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, fill)
