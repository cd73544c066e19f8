"""Where a PE-Rank query's time goes: forward hooks around the encoder and the LLM body, and torch.profiler.

Hooks rather than instrumenting the reranker, so the benchmark times the exact code users run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class Breakdown:
    """Wall time spent in the encoder, in LLM prefill forwards and in LLM single-token decode forwards.

    Forward hooks around the encoder's transformer and the LLM body; on CUDA they synchronise (distorting
    overlap a little), so they are only installed there on request.
    """

    def __init__(self, model: Any, device: str) -> None:
        import torch

        self.device = torch.device(device)
        self.totals = {"encoder_s": 0.0, "llm_prefill_s": 0.0, "llm_decode_s": 0.0}
        self.calls = {"llm_prefill_calls": 0, "llm_decode_calls": 0}
        self._start: dict[int, tuple[str, float]] = {}
        self.handles: list[Any] = []
        self._hook(model.encoder.model, lambda args, kwargs: "encoder_s")
        self._hook(model.decoder(), self._llm_kind)

    @staticmethod
    def _llm_kind(args: tuple, kwargs: dict) -> str:
        """A forward of one new position is a decode step; anything longer is a prefill."""
        x = kwargs.get("inputs_embeds")
        if x is None:
            x = kwargs.get("input_ids")
        if x is None and args:
            x = args[0]
        return "llm_decode_s" if x is not None and x.shape[1] == 1 else "llm_prefill_s"

    def _hook(self, module: Any, kind_of: Callable[[tuple, dict], str]) -> None:
        from perank.backends.runtime import synchronize

        def pre(mod: Any, args: tuple, kwargs: dict) -> None:
            synchronize(self.device)
            self._start[id(mod)] = (kind_of(args, kwargs), time.perf_counter())

        def post(mod: Any, args: tuple, kwargs: dict, out: Any) -> None:
            synchronize(self.device)
            kind, t0 = self._start.pop(id(mod))
            self.totals[kind] += time.perf_counter() - t0
            if kind != "encoder_s":
                self.calls[kind.replace("_s", "_calls")] += 1

        self.handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        self.handles.append(module.register_forward_hook(post, with_kwargs=True))

    def reset(self) -> None:
        """Forget the warm-up's timings."""
        self.totals = dict.fromkeys(self.totals, 0.0)
        self.calls = dict.fromkeys(self.calls, 0)

    def report(self, total_s: float, n_queries: int) -> dict[str, float]:
        """Seconds and forward calls per query; ``other_s`` is what the hooks did not see."""
        out = {k: v / n_queries for k, v in self.totals.items()}
        out["other_s"] = max(0.0, total_s - sum(self.totals.values())) / n_queries
        out.update({k: v / n_queries for k, v in self.calls.items()})
        return out


def profile_top_ops(reranker: Any, requests: list[Any], device: str) -> list[dict[str, Any]]:
    """torch.profiler over a few queries: the top operators by self time."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from perank.backends.runtime import synchronize

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=activities) as prof:
        for r in requests:
            reranker.rerank([r])
        synchronize(torch.device(device))
    rows = []
    for ev in sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:15]:
        rows.append({"op": ev.key, "calls": ev.count, "self_cpu_s": ev.self_cpu_time_total / 1e6 / len(requests)})
    logger.info("top ops per query:\n%s", "\n".join(f"  {r['op']:<40} {r['self_cpu_s']:.4f} s" for r in rows))
    return rows
