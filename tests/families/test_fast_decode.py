"""The static-cache decode engine (CPU-testable half of the CUDA-graph path) equals the eager one and the reference.

The CUDA-graph half is in ``tests/gpu/test_gpu.py``; here, besides equivalence, a dispatch-mode check stands in for
it: a decode step must not read any tensor value on the host (that would fail a CUDA graph capture).
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from perank.families.pe_rank.decoding import decode_listwise, left_pad, prefill_prefix
from perank.families.pe_rank.fast_decode import StaticDecoder, build_runner, resolve_engine
from perank.ranking.registry import build_reranker
from perank.runs import RunIdentity
from perank.types import Candidate, InputError, Query, Request

#: ops that copy a tensor value to the host (``.item()``, ``bool(t)``, data-dependent shapes)
HOST_READS = ("_local_scalar_dense", "nonzero", "masked_select", "unique", "equal")


def assert_same(static, eager, atol: float = 1e-4) -> None:
    """Same permutation; logits and probabilities equal within float tolerance; same accounting."""
    for s, e in zip(static, eager, strict=True):
        assert s.order == e.order
        torch.testing.assert_close(torch.tensor(s.step_logits), torch.tensor(e.step_logits), atol=atol, rtol=0)
        torch.testing.assert_close(torch.tensor(s.step_probs), torch.tensor(e.step_probs), atol=atol, rtol=0)
        assert (s.tokens_processed, s.tokens_generated) == (e.tokens_processed, e.tokens_generated)


def test_static_engine_equals_reference_and_eager(tiny_model, decode_reference, window_batch):
    sizes = [5, 3, 7]
    prompts, batch, pvs, cvs = window_batch(tiny_model, sizes)
    runner = StaticDecoder(tiny_model, graphs=False)
    static = decode_listwise(tiny_model, batch["input_ids"], batch["attention_mask"], pvs, cvs, runner=runner)
    eager = decode_listwise(tiny_model, batch["input_ids"], batch["attention_mask"], pvs, cvs)
    assert_same(static, eager)
    for n, prompt, pv, cv, out in zip(sizes, prompts, pvs, cvs, static):
        ref = decode_reference(tiny_model, prompt, pv, cv)
        assert sorted(out.order) == list(range(n)) and out.order == ref.order
        torch.testing.assert_close(torch.tensor(out.step_logits), torch.tensor(ref.step_logits), atol=1e-4, rtol=0)
        assert out.tokens_processed == ref.tokens_processed
    assert runner.captures == 0  # no graphs on CPU


@pytest.mark.parametrize("mode", ["greedy", "single-pass"])
def test_static_engine_with_prefix_reuse(tiny_model, mode, window_batch):
    """The shared prefix copied into the static cache, twice from the same prefix (it must not be consumed),
    and a second batch in the same slot: all equal to decoding whole prompts eagerly."""
    sizes = [5, 3, 7]
    prompts, batch, pvs, cvs = window_batch(tiny_model, sizes, seed=4)
    whole = decode_listwise(tiny_model, batch["input_ids"], batch["attention_mask"], pvs, cvs, mode=mode)
    ids = [tiny_model.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    cut = [row.index(tiny_model.placeholder_id) for row in ids]
    prefix = prefill_prefix(tiny_model, [row[:c] for row, c in zip(ids, cut)])
    rest_ids, rest_mask = left_pad([row[c:] for row, c in zip(ids, cut)], pad_id=0)
    runner = StaticDecoder(tiny_model, graphs=False)
    for _ in range(2):
        reused = decode_listwise(tiny_model, rest_ids, rest_mask, pvs, cvs, mode=mode, prefix=prefix, runner=runner)
        for c, w, r in zip(cut, whole, reused):
            assert r.order == w.order
            torch.testing.assert_close(torch.tensor(r.step_logits), torch.tensor(w.step_logits), atol=1e-4, rtol=0)
            assert r.tokens_processed == w.tokens_processed - c


def test_static_slots_grow_and_are_reused(tiny_model, window_batch):
    """One slot per batch size; a call that fits reuses it, a longer one replaces it with a bigger cache."""
    runner = StaticDecoder(tiny_model, graphs=False, headroom=1.0, align=8)
    _, small, pvs, cvs = window_batch(tiny_model, [3, 2], seed=6)
    out = decode_listwise(tiny_model, small["input_ids"], small["attention_mask"], pvs, cvs, runner=runner)
    assert_same(out, decode_listwise(tiny_model, small["input_ids"], small["attention_mask"], pvs, cvs))
    first = runner._slots[2]
    assert first.capacity % 8 == 0 and first.capacity >= small["input_ids"].shape[1] + 2
    decode_listwise(tiny_model, small["input_ids"], small["attention_mask"], pvs, cvs, runner=runner)
    assert runner._slots[2] is first  # the same length again: the same cache
    _, big, pvs2, cvs2 = window_batch(tiny_model, [9, 8], seed=7)
    assert big["input_ids"].shape[1] + 8 > first.capacity
    out = decode_listwise(tiny_model, big["input_ids"], big["attention_mask"], pvs2, cvs2, runner=runner)
    assert_same(out, decode_listwise(tiny_model, big["input_ids"], big["attention_mask"], pvs2, cvs2))
    assert runner._slots[2] is not first and runner._slots[2].capacity > first.capacity
    _, one, pvs3, cvs3 = window_batch(tiny_model, [4], seed=8)
    out = decode_listwise(tiny_model, one["input_ids"], one["attention_mask"], pvs3, cvs3, runner=runner)
    assert_same(out, decode_listwise(tiny_model, one["input_ids"], one["attention_mask"], pvs3, cvs3))
    assert sorted(runner._slots) == [1, 2]


class HostReads(TorchDispatchMode):
    """Records every aten op that reads a tensor's value on the host."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        name = func.__name__.split(".")[0]
        if name in HOST_READS:
            self.seen.append(func.__name__)
        return func(*args, **(kwargs or {}))


def test_decode_step_reads_nothing_on_the_host(tiny_model, window_batch):
    """What a CUDA graph captures (one static decode step) must not sync with the host: no ``.item()``, no
    data-dependent shapes. A CPU stand-in for the capture, so a transformers change that adds one shows here."""
    _, batch, pvs, cvs = window_batch(tiny_model, [4, 3], seed=9)
    runner = StaticDecoder(tiny_model, graphs=False)
    embeds = tiny_model.inputs_embeds(batch["input_ids"], pvs)
    mask = batch["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        runner.prefill(embeds, mask, positions, None, steps=3)
        slot = runner._slot
        lengths = [int(layer.cumulative_length) for layer in slot.cache.layers]
        with HostReads() as reads:
            runner._forward(slot)
    assert reads.seen == [], f"host reads in a decode step: {reads.seen}"
    assert [int(layer.cumulative_length) for layer in slot.cache.layers] == [n + 1 for n in lengths]


def test_engine_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_engine("auto", cpu) == "eager"
    assert resolve_engine("auto", cuda) == "graph"
    assert resolve_engine("auto", cuda, "flash_attention_2") == "eager"
    assert resolve_engine("static", cpu) == "static" and resolve_engine("eager", cuda) == "eager"
    with pytest.raises(InputError, match="needs a CUDA device"):
        resolve_engine("graph", cpu)
    with pytest.raises(InputError, match="sdpa or eager attention"):
        resolve_engine("static", cuda, "flash_attention_2")
    with pytest.raises(InputError, match="unknown decode_engine 'fast'"):
        resolve_engine("fast", cpu)


def test_reranker_engine_option(tiny_model):
    """``decode_engine`` on the reranker: auto is eager on CPU, static ranks the same, graph on CPU is refused,
    and the engine is not part of a run's name or identity."""
    assert build_runner("auto", tiny_model) is None
    auto = build_reranker("pe-rank", model=tiny_model, window_size=4, step=2)
    static = build_reranker("pe-rank", model=tiny_model, window_size=4, step=2, decode_engine="static")
    assert auto.describe()["decode_engine"] == "eager" and static.describe()["decode_engine"] == "static"
    assert isinstance(static.runner, StaticDecoder) and not static.runner.graphs
    assert RunIdentity.of(auto) == RunIdentity.of(static) and "decode_engine" in static.volatile_settings
    requests = [
        Request(
            query=Query(qid=f"q{q}", text=f"what is topic {q}" + " really" * q),
            candidates=[
                Candidate(docid=f"d{i}", text=f"passage {i} " + "w " * i, score=0.0, rank=i + 1) for i in range(7)
            ],
        )
        for q in range(3)
    ]
    for a, s in zip(auto.rerank(requests), static.rerank(requests), strict=True):
        assert [c.docid for c in a.candidates] == [c.docid for c in s.candidates]
        assert [c.score for c in a.candidates] == pytest.approx([c.score for c in s.candidates], abs=1e-4)
    with pytest.raises(InputError, match="needs a CUDA device"):
        build_reranker("pe-rank", model=tiny_model, decode_engine="graph")
    with pytest.raises(InputError, match="unknown decode_engine"):
        build_reranker("pe-rank", model=tiny_model, decode_engine="turbo")
