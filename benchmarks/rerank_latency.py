"""Rerank latency benchmark: does PE-Rank's one-token-per-passage actually make ranking faster?

Measures, in one run and on the same machine, each configuration in its own fresh subprocess (so that peak
memory is per configuration):

- ``pe-rank``                      PE-Rank, greedy decoding with a KV cache, one query per call
- ``pe-rank-whole-prompts``        ``pe-rank`` without reusing the prompt prefix its windows share (the gain)
- ``pe-rank-single-pass``          PE-Rank, single-pass decoding, one query per call
- ``pe-rank-batched``              PE-Rank, greedy, ``--batch-size`` queries per call
- ``pe-rank-single-pass-batched``  PE-Rank, single-pass, ``--batch-size`` queries per call
- ``listwise-text-embedding``      passage tokens *and* their text in the prompt, greedy, one query per call
- ``listwise-text``                the uncompressed RankGPT-style text baseline (``--text-queries`` queries)
- ``pe-rank-cached``               (only with ``--embedding-cache``) PE-Rank greedy with a warm embedding cache

For each: per-query latency (median, p90: the wall time of the call that returned the query, so for batched
configurations every query of a batch waits for the whole batch), queries per second (queries / total wall time,
which is what batching improves), LLM tokens processed and generated per query (means of the rerankers' own
``stats``), peak RSS of the process (MB; includes loading the model), on CUDA ``torch.cuda.max_memory_allocated``,
and nDCG@10 of the queries run. One warm-up query runs first and is excluded. PE-Rank configurations also get a
time breakdown (encoder / LLM prefill / LLM decode steps / the rest = Python, projector, tokenisation) from
forward hooks.

Examples (see benchmarks/README.md)::

    # CPU, the small PE-Rank (trained if checkpoints/pe-rank-smollm2-minilm exists, else assembled untrained)
    python benchmarks/rerank_latency.py --tag cpu --queries 43 --text-queries 10
    # H100, random-weight Mistral-7B + BERT-base shapes (timings do not depend on weight values)
    python benchmarks/rerank_latency.py --synthetic mistral-7b --device cuda --tag h100 --queries 43 --batch-size 43
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT / "src") not in sys.path:  # runnable without installing the package
    sys.path.insert(0, str(REPO_ROOT / "src"))

logger = logging.getLogger("rerank_latency")

DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "pe-rank-smollm2-minilm"
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

#: every configuration the benchmark knows, in run order: name -> (reranker, decode mode, batched?)
CONFIGS: dict[str, tuple[str, str | None, bool]] = {
    "pe-rank": ("pe-rank", "greedy", False),
    "pe-rank-whole-prompts": ("pe-rank", "greedy", False),
    "pe-rank-single-pass": ("pe-rank", "single-pass", False),
    "pe-rank-batched": ("pe-rank", "greedy", True),
    "pe-rank-single-pass-batched": ("pe-rank", "single-pass", True),
    "listwise-text-embedding": ("listwise-text-embedding", "greedy", False),
    "listwise-text": ("listwise-text", None, False),
    "pe-rank-cached": ("pe-rank", "greedy", False),
}
DEFAULT_CONFIGS = [c for c in CONFIGS if c != "pe-rank-cached"]
#: constructor keywords a configuration adds to its reranker's
CONFIG_KWARGS: dict[str, dict[str, Any]] = {"pe-rank-whole-prompts": {"reuse_prefix": False}}

#: shapes of the synthetic models: (LLM MistralConfig kwargs, encoder BertConfig kwargs)
SYNTHETIC: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "mistral-7b": (
        dict(
            hidden_size=4096,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            intermediate_size=14336,
            vocab_size=32000,
            max_position_embeddings=32768,
            rope_theta=1e6,
            sliding_window=None,
        ),
        {},  # BertConfig defaults: BERT-base, 768-d, 12 layers
    ),
    "tiny": (
        dict(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=128,
            vocab_size=32000,
            max_position_embeddings=8192,
            sliding_window=None,
        ),
        dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    ),
}


# ==================================================================================================
# helpers shared by the driver and the workers
# ==================================================================================================


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of a non-empty list."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB, macOS bytes)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _resolve_dtype(name: str, device: str) -> Any:
    import torch

    from perank.families.pe_rank.model import default_dtype

    if name == "auto":
        return default_dtype(device)
    aliases = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}
    dtype = getattr(torch, aliases.get(name, name), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}")
    return dtype


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


def load_requests(dataset: str, retrieval_results: str | None, topk: int, n: int) -> list[Any]:
    """The first ``n`` queries (cycling through the file when ``n`` exceeds it), top-``topk`` candidates each."""
    from perank.datasets import get_dataset
    from perank.io import read_retrieval_results
    from perank.types import Request

    path = retrieval_results or get_dataset(dataset).require("candidates_file")
    reqs = read_retrieval_results(path)
    reqs = [Request(query=r.query, candidates=r.candidates[:topk]) for r in reqs]
    return [reqs[i % len(reqs)] for i in range(n)]


def ndcg10(results: list[Any], dataset: str, qrels: str | None) -> float | None:
    """nDCG@10 of the results (each query once) against the dataset's shipped qrels; None without qrels."""
    from perank.datasets import get_dataset
    from perank.io import read_qrels
    from perank.metrics import evaluate_run

    path = qrels or get_dataset(dataset).local("qrels_file")
    if path is None or not Path(path).exists():
        return None
    run = {r.query.qid: {c.docid: float(c.score) for c in r.candidates} for r in results}
    try:
        return float(evaluate_run(run, read_qrels(path))["ndcg_cut_10"])
    except Exception as exc:  # a run of unjudged queries only
        logger.warning("nDCG@10 not computed: %s", exc)
        return None


# ==================================================================================================
# models
# ==================================================================================================


def build_synthetic(
    kind: str,
    device: str,
    dtype: Any,
    attn: str | None,
    max_length: int,
    tokenizer: str | None = None,
    encoder_tokenizer: str | None = None,
) -> Any:
    """A random-weight PE-Rank model with the shapes of ``kind``, built directly on ``device`` in ``dtype``.

    Timings do not depend on weight values, so this measures a 7B model's speed without its weights. The LLM
    is built under a ``torch.device`` context (no 28 GB fp32 CPU copy); the tokenizer is SmolLM2's (vocabulary
    widened to cover it if needed); the encoder is a BertConfig-shaped model with MiniLM's (BERT) tokenizer.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BertConfig, BertModel, MistralConfig

    from perank.backends.encoder import PassageEncoder
    from perank.backends.resolve import resolve_model
    from perank.families.pe_rank.model import PERankConfig, PERankModel, add_special_tokens, default_attn_implementation

    llm_kwargs, enc_kwargs = SYNTHETIC[kind]
    tok_path = tokenizer
    tokenizer = AutoTokenizer.from_pretrained(tok_path or resolve_model("smollm2"))
    add_special_tokens(tokenizer)
    llm_kwargs = dict(llm_kwargs)
    llm_kwargs["vocab_size"] = max(llm_kwargs["vocab_size"], len(tokenizer))
    llm_config = MistralConfig(
        **llm_kwargs,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    enc_tokenizer = AutoTokenizer.from_pretrained(encoder_tokenizer or resolve_model("all-minilm-l6-v2"))
    enc_config = BertConfig(**enc_kwargs, vocab_size=max(30522, len(enc_tokenizer)))
    attn = attn or default_attn_implementation(device)
    torch.manual_seed(0)
    with torch.device(device):
        llm = AutoModelForCausalLM.from_config(llm_config, dtype=dtype, attn_implementation=attn)
        enc_model = BertModel(enc_config).to(dtype=torch.float32 if torch.device(device).type == "cpu" else dtype)
    llm.eval()
    llm.requires_grad_(False)
    llm.generation_config.pad_token_id = tokenizer.pad_token_id
    encoder = PassageEncoder(
        f"synthetic-bert-{kind}", pooling="mean", max_length=max_length, model=enc_model, tokenizer=enc_tokenizer
    )
    config = PERankConfig(
        llm_name=f"synthetic-{kind}",
        encoder_name=f"synthetic-bert-{kind}",
        encoder_pooling="mean",
        encoder_max_length=max_length,
    )
    model = PERankModel(config, llm, tokenizer, encoder)
    model.eval()
    model.requires_grad_(False)
    return model


def default_model_path(llm: str, encoder: str) -> Path:
    """The trained small checkpoint when present, else an untrained PE-Rank assembled once into the cache."""
    small = (llm, encoder) == ("smollm2", "all-minilm-l6-v2")
    if small and (DEFAULT_CHECKPOINT / "perank_config.json").exists():
        return DEFAULT_CHECKPOINT
    from perank.backends.resolve import cache_dir

    target = cache_dir() / "bench" / f"pe-rank-{llm}-{encoder}-untrained"
    shipped = REPO_ROOT / "checkpoints" / "pe-rank-smollm2-minilm-untrained"
    if small and (shipped / "perank_config.json").exists():
        return shipped
    if (target / "perank_config.json").exists():
        return target
    logger.info("no trained checkpoint; assembling an untrained PE-Rank into %s", target)
    try:
        import perank.cli.assemble  # noqa: F401

        cmd = [sys.executable, "-m", "perank.cli.assemble", "--llm", llm, "--encoder", encoder, "--output", str(target)]
        subprocess.run(cmd, check=True, env=_child_env())
    except ImportError:
        from perank.families.pe_rank.model import PERankModel

        PERankModel.build(llm, encoder).save_pretrained(target)
    return target


def _accepted_kwargs(factory: Any, kwargs: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The kwargs the reranker's constructor accepts (all of them if it takes ``**kwargs``), and the dropped names."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return kwargs, []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs, []
    kept = {k: v for k, v in kwargs.items() if k in params}
    return kept, sorted(set(kwargs) - set(kept))


def _import_families() -> None:
    """Register every reranker family, including those the package ``__init__`` may not import yet."""
    import importlib

    from perank.ranking.registry import available_rerankers

    available_rerankers()
    for module in ("perank.families.pe_rank.reranker", "perank.families.listwise_text.reranker"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            logger.warning("%s not importable: %s", module, exc)


def _find_perank_model(obj: Any) -> Any:
    """The PERankModel a reranker holds (for the time breakdown), or None."""
    from perank.families.pe_rank.model import PERankModel

    for value in vars(obj).values():
        if isinstance(value, PERankModel):
            return value
    return None


class Breakdown:
    """Wall time spent in the encoder, in LLM prefill forwards and in LLM single-token decode forwards.

    Forward hooks around the encoder's transformer and the LLM body; on CUDA they synchronise (distorting
    overlap a little), so they are only installed there on request.
    """

    def __init__(self, model: Any, device: str) -> None:
        self.device = device
        self.totals = {"encoder_s": 0.0, "llm_prefill_s": 0.0, "llm_decode_s": 0.0}
        self.calls = {"llm_prefill_calls": 0, "llm_decode_calls": 0}
        self._start: dict[int, tuple[str, float]] = {}
        self.handles = []
        self._hook(model.encoder.model, lambda args, kwargs: "encoder_s")
        self._hook(model.decoder(), self._llm_kind)

    @staticmethod
    def _llm_kind(args: tuple, kwargs: dict) -> str:
        x = kwargs.get("inputs_embeds")
        if x is None:
            x = kwargs.get("input_ids")
        if x is None and args:
            x = args[0]
        return "llm_decode_s" if x is not None and x.shape[1] == 1 else "llm_prefill_s"

    def _hook(self, module: Any, kind_of: Any) -> None:
        def pre(mod: Any, args: tuple, kwargs: dict) -> None:
            _sync(self.device)
            self._start[id(mod)] = (kind_of(args, kwargs), time.perf_counter())

        def post(mod: Any, args: tuple, kwargs: dict, out: Any) -> None:
            _sync(self.device)
            kind, t0 = self._start.pop(id(mod))
            self.totals[kind] += time.perf_counter() - t0
            if kind != "encoder_s":
                self.calls[kind.replace("_s", "_calls")] += 1

        self.handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        self.handles.append(module.register_forward_hook(post, with_kwargs=True))

    def reset(self) -> None:
        self.totals = dict.fromkeys(self.totals, 0.0)
        self.calls = dict.fromkeys(self.calls, 0)

    def report(self, total_s: float, n_queries: int) -> dict[str, float]:
        out = {k: v / n_queries for k, v in self.totals.items()}
        out["other_s"] = max(0.0, total_s - sum(self.totals.values())) / n_queries
        out.update({k: v / n_queries for k, v in self.calls.items()})
        return out


# ==================================================================================================
# one configuration (runs in a fresh subprocess)
# ==================================================================================================


_SYNTHETIC_MODELS: dict[tuple, Any] = {}


def run_config(spec: dict[str, Any]) -> dict[str, Any]:
    """Build the reranker of one configuration, warm it up, time it, and return its entry."""
    import torch

    from perank.ranking.base import _REGISTRY, available_rerankers, build_reranker

    torch.set_grad_enabled(False)
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    name = spec["name"]
    reranker_name, decode_mode, batched = CONFIGS[name]
    device = spec["device"]
    dtype = _resolve_dtype(spec["dtype"], device)
    batch_size = spec["batch_size"] if batched else 1
    slow = reranker_name in ("listwise-text", "listwise-text-embedding")
    n_queries = spec["text_queries"] if slow else spec["queries"]
    requests = load_requests(spec["dataset"], spec.get("retrieval_results"), spec["topk"], n_queries + 1)
    warmup, requests = requests[-1:], requests[:-1]
    if n_queries > 1 and warmup[0].query.qid == requests[0].query.qid:
        warmup = requests[1:2]
    # warming up needs every code path once (encoder, prefill, decode steps), not a whole top-100: one window
    # of the warm-up query, a full batch of them for the batched configurations (same shapes as timed calls)
    from perank.types import Request

    warm = Request(query=warmup[0].query, candidates=warmup[0].candidates[: spec["window_size"]])
    warmup = [warm] * min(spec["batch_size"] if batched else 1, max(1, n_queries))

    t_load = time.perf_counter()
    _import_families()
    kwargs: dict[str, Any] = {
        "device": device,
        "dtype": dtype,
        "batch_size": batch_size,
        "window_size": spec["window_size"],
        "step": spec["step"],
    }
    if decode_mode is not None:
        kwargs["decode_mode"] = decode_mode
    if spec.get("synthetic"):
        key = (spec["synthetic"], device, str(dtype), spec.get("attn"), spec["max_length"])
        if key not in _SYNTHETIC_MODELS:  # --in-process: build once, share between configurations
            _SYNTHETIC_MODELS.clear()
            _SYNTHETIC_MODELS[key] = build_synthetic(
                spec["synthetic"],
                device,
                dtype,
                spec.get("attn"),
                spec["max_length"],
                tokenizer=spec.get("tokenizer"),
                encoder_tokenizer=spec.get("encoder_tokenizer"),
            )
        model = _SYNTHETIC_MODELS[key]
        if reranker_name == "listwise-text":
            kwargs.update(llm=model.llm, tokenizer=model.tokenizer)
            # random weights never emit end-of-sequence, so the answer length is fixed: make it a real one's
            # ("[12] > " is about 5 tokens, so about 5 per passage)
            kwargs["max_new_tokens"] = spec.get("text_max_new_tokens") or 5 * spec["window_size"]
        else:
            kwargs["model"] = model
        kwargs["model_path"] = model.config.llm_name
    else:
        kwargs["model_path"] = spec["text_model_path"] if reranker_name == "listwise-text" else spec["model_path"]
        if reranker_name == "listwise-text" and spec.get("text_max_new_tokens"):
            kwargs["max_new_tokens"] = spec["text_max_new_tokens"]
    if name == "pe-rank-cached":
        kwargs["embedding_cache"] = spec["embedding_cache"]
    kwargs.update(CONFIG_KWARGS.get(name, {}))
    if reranker_name not in _REGISTRY:
        raise SystemExit(f"reranker {reranker_name!r} is not registered (known: {', '.join(available_rerankers())})")
    kwargs, dropped = _accepted_kwargs(_REGISTRY[reranker_name], kwargs)
    if dropped:
        logger.warning("%s: the reranker does not accept %s; left out", name, ", ".join(dropped))
    if spec.get("synthetic") and ({"model", "llm"} & set(dropped)):
        raise SystemExit(f"{reranker_name} does not accept an in-memory model, which synthetic mode needs")
    reranker = build_reranker(reranker_name, **kwargs)
    pe_model = _find_perank_model(reranker)
    if name == "pe-rank-cached" and pe_model is not None and getattr(pe_model.encoder, "cache", None) is None:
        from perank.backends.embedding_cache import EmbeddingCache

        pe_model.encoder.cache = EmbeddingCache(spec["embedding_cache"])
    load_s = time.perf_counter() - t_load

    breakdown = None
    want_breakdown = spec.get("breakdown")
    if want_breakdown is None:
        want_breakdown = not device.startswith("cuda")
    if pe_model is not None and want_breakdown:
        breakdown = Breakdown(pe_model, device)

    # warm-up: one query (for the cached configuration, this also fills the cache for the timed queries)
    if name == "pe-rank-cached" and pe_model is not None:
        pe_model.encoder.encode([c.text for r in requests for c in r.candidates], batch_size=64)
    reranker.rerank(warmup)
    _sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    if breakdown is not None:
        breakdown.reset()

    latencies: list[float] = []
    results: list[Any] = []
    t_all = time.perf_counter()
    for start in range(0, len(requests), batch_size):
        batch = requests[start : start + batch_size]
        t0 = time.perf_counter()
        out = reranker.rerank(batch)
        _sync(device)
        dt = time.perf_counter() - t0
        latencies.extend([dt] * len(batch))
        results.extend(out)
    total_s = time.perf_counter() - t_all

    def mean_stat(key: str) -> float | None:
        vals = [r.stats[key] for r in results if isinstance(r.stats.get(key), int | float)]
        return statistics.fmean(vals) if vals else None

    numeric = sorted({k for r in results for k, v in r.stats.items() if isinstance(v, int | float)})
    actual_dtype = str(getattr(pe_model, "dtype", dtype)).removeprefix("torch.")
    entry: dict[str, Any] = {
        "name": name,
        "reranker": reranker_name,
        "config": {
            "batch_size": batch_size,
            "decode_mode": decode_mode,
            "device": device,
            "dtype": actual_dtype,
            "n_queries": len(requests),
            "topk": spec["topk"],
            "window_size": spec["window_size"],
            "step": spec["step"],
            "model": f"synthetic {spec['synthetic']}" if spec.get("synthetic") else _short_path(kwargs["model_path"]),
            "threads": torch.get_num_threads(),
            "max_new_tokens": kwargs.get("max_new_tokens"),
            "reuse_prefix": getattr(reranker, "reuse_prefix", None),
            "dataset": spec["dataset"],
        },
        "median_latency_s": statistics.median(latencies),
        "p90_latency_s": percentile(latencies, 90),
        "queries_per_s": len(requests) / total_s,
        "total_s": total_s,
        "tokens_processed": mean_stat("tokens_processed"),
        "tokens_generated": mean_stat("tokens_generated"),
        "peak_rss_mb": _peak_rss_mb(),
        "ndcg_cut_10": ndcg10(results, spec["dataset"], spec.get("qrels")),
        "load_s": load_s,
        "stats_mean": {k: mean_stat(k) for k in numeric},
    }
    if device.startswith("cuda"):
        entry["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if breakdown is not None:
        entry["breakdown_per_query_s"] = breakdown.report(total_s, len(requests))
    if spec.get("profile") and pe_model is not None:
        entry["profile_top_ops"] = _profile(reranker, requests[: max(1, min(3, len(requests)))], device)
    return entry


def _profile(reranker: Any, requests: list[Any], device: str) -> list[dict[str, Any]]:
    """torch.profiler over a few queries: the top operators by self time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=activities) as prof:
        for r in requests:
            reranker.rerank([r])
        _sync(device)
    rows = []
    for ev in sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:15]:
        rows.append({"op": ev.key, "calls": ev.count, "self_cpu_s": ev.self_cpu_time_total / 1e6 / len(requests)})
    logger.info("top ops per query:\n%s", "\n".join(f"  {r['op']:<40} {r['self_cpu_s']:.4f} s" for r in rows))
    return rows


# ==================================================================================================
# driver: one subprocess per configuration, then the JSON, markdown and plot
# ==================================================================================================


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    src = str(REPO_ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_in_subprocess(spec: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rerank_latency.") as tmp:
        out = Path(tmp) / "entry.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec), "--worker-output", str(out)]
        proc = subprocess.run(cmd, env=_child_env(), timeout=timeout_s)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"configuration {spec['name']} failed (exit code {proc.returncode})")
        return json.loads(out.read_text())


def ratios(entries: list[dict[str, Any]]) -> list[tuple[str, float | None, str]]:
    """The ratios the targets are about: (description, value, target)."""
    by = {e["name"]: e for e in entries}

    def ratio(a: str, b: str, key: str, invert: bool = False) -> float | None:
        if a not in by or b not in by or not by[a].get(key) or not by[b].get(key):
            return None
        return by[b][key] / by[a][key] if invert else by[a][key] / by[b][key]

    rows = [
        (
            "listwise-text / pe-rank median latency (batch 1)",
            ratio("listwise-text", "pe-rank", "median_latency_s"),
            ">= 5",
        ),
        (
            "pe-rank greedy / single-pass median latency",
            ratio("pe-rank", "pe-rank-single-pass", "median_latency_s"),
            ">= 3",
        ),
        ("pe-rank batched / batch-1 queries per second", ratio("pe-rank-batched", "pe-rank", "queries_per_s"), ">= 2"),
        (
            "pe-rank whole prompts / shared-prefix reuse median latency",
            ratio("pe-rank-whole-prompts", "pe-rank", "median_latency_s"),
            "",
        ),
        (
            "pe-rank single-pass batched / batch-1 queries per second",
            ratio("pe-rank-single-pass-batched", "pe-rank-single-pass", "queries_per_s"),
            "",
        ),
        (
            "listwise-text-embedding / pe-rank median latency",
            ratio("listwise-text-embedding", "pe-rank", "median_latency_s"),
            "",
        ),
        (
            "listwise-text / pe-rank tokens processed per query",
            ratio("listwise-text", "pe-rank", "tokens_processed"),
            "",
        ),
    ]
    if "pe-rank" in by:
        rows.append(("pe-rank median latency, batch 1 (s)", by["pe-rank"]["median_latency_s"], "<= 0.5 on H100 7B"))
    best = max((e["queries_per_s"] for e in entries if e["reranker"] == "pe-rank"), default=None)
    if best is not None:
        rows.append(("pe-rank best queries per second", best, ">= 20 on H100 7B batched"))
    return rows


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def markdown(entries: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"# Rerank latency ({meta['tag']})",
        "",
        f"{meta['when']}; {meta['machine']}; model: {meta['model']}; "
        f"dataset {meta['dataset']} BM25 top-{meta['topk']}, window {meta['window_size']} step {meta['step']}; "
        "warm-up query excluded; each configuration in its own process.",
        "",
        "| configuration | batch | decode | queries | median s/query | p90 s/query | queries/s | tokens processed | "
        "tokens generated | peak RSS MB | nDCG@10 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in entries:
        c = e["config"]
        lines.append(
            f"| {e['name']} | {c['batch_size']} | {c['decode_mode'] or 'generate'} | {c['n_queries']} | "
            f"{_fmt(e['median_latency_s'])} | {_fmt(e['p90_latency_s'])} | {_fmt(e['queries_per_s'])} | "
            f"{_fmt(e['tokens_processed'], 0)} | {_fmt(e['tokens_generated'], 1)} | {_fmt(e['peak_rss_mb'], 0)} | "
            f"{_fmt(e['ndcg_cut_10'], 4)} |"
        )
    if any("cuda_max_allocated_mb" in e for e in entries):
        lines += [
            "",
            "CUDA max allocated (MB): "
            + ", ".join(
                f"{e['name']} {e['cuda_max_allocated_mb']:,.0f}" for e in entries if "cuda_max_allocated_mb" in e
            ),
        ]
    lines += ["", "| ratio | value | target |", "| --- | --- | --- |"]
    lines += [f"| {d} | {_fmt(v, 2)} | {t} |" for d, v, t in ratios(entries)]
    with_bd = [e for e in entries if e.get("breakdown_per_query_s")]
    if with_bd:
        lines += [
            "",
            "Where a query's time goes (seconds per query; hooks around the encoder and the LLM body):",
            "",
            "| configuration | encoder | LLM prefill | LLM decode steps | other (Python, projector, tokenising) | "
            "prefill calls | decode calls |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for e in with_bd:
            b = e["breakdown_per_query_s"]
            lines.append(
                f"| {e['name']} | {_fmt(b['encoder_s'])} | {_fmt(b['llm_prefill_s'])} | {_fmt(b['llm_decode_s'])} | "
                f"{_fmt(b['other_s'])} | {_fmt(b['llm_prefill_calls'], 1)} | {_fmt(b['llm_decode_calls'], 1)} |"
            )
    return "\n".join(lines) + "\n"


def plot(entries: list[dict[str, Any]], path: Path, title: str) -> None:
    """nDCG@10 against time per query: the median latency at batch 1, the amortised wall time when batched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8))
    scored = any(e["ndcg_cut_10"] is not None for e in entries)
    for e in entries:
        # no qrels (or no pytrec_eval): every point at 0 so the latencies are still shown
        y = e["ndcg_cut_10"] if scored else 0.0
        if y is None:
            continue
        bs, n = e["config"]["batch_size"], e["config"]["n_queries"]
        if bs > 1:
            x, label, marker = 1.0 / e["queries_per_s"], f"{e['name']} (amortised, batch {bs}; {n} q)", "s"
        else:
            x, label, marker = e["median_latency_s"], f"{e['name']} ({n} q)", "o"
        ax.scatter(x, y, s=45, marker=marker, label=label)
    ax.set_xscale("log")
    ax.margins(x=0.2, y=0.15)
    ax.legend(fontsize=7, loc="best")
    ax.set_xlabel("seconds per query (log): median latency at batch 1 (o), wall time / queries when batched (s)")
    ax.set_ylabel("nDCG@10 (on the queries run)" if scored else "nDCG@10 not computed")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_outputs(
    entries: list[dict[str, Any]], failed: list[str], meta: dict[str, Any], stem: Path, final: bool
) -> str:
    """Write the JSON and markdown (after every configuration, so an interrupted run keeps what it measured)."""
    from perank.io import atomic_write

    with atomic_write(stem.with_suffix(".json")) as fh:
        fh.write(json.dumps(entries, indent=2) + "\n")
    md = markdown(entries, meta)
    if failed:
        md += f"\nFailed configurations: {', '.join(failed)}\n"
    if not final:
        md += "\n(partial: the run is still going or was interrupted)\n"
    with atomic_write(stem.with_suffix(".md")) as fh:
        fh.write(md)
    if entries and final:
        try:
            _plot_to(entries, stem, meta)
        except Exception as exc:  # the plot is a convenience: never lose the measurements over it
            logger.error("plot failed: %s", exc)
    return md


def _plot_to(entries: list[dict[str, Any]], stem: Path, meta: dict[str, Any]) -> None:
    title = f"{meta['tag']}: {meta['dataset']} BM25 top-{meta['topk']}, {meta['model']}"
    plot(entries, stem.with_suffix(".png"), title)


def _short_path(path: str | Path) -> str:
    """A path relative to the repository when it is inside it (portable in the committed record)."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT)) if Path(path).exists() else str(path)
    except ValueError:
        return str(path)


def _machine(device: str) -> str:
    import platform

    desc = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible"
    if device.startswith("cuda"):
        try:
            import torch

            desc = torch.cuda.get_device_name(0) + "; " + desc
        except Exception:
            pass
    return desc


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    m = p.add_argument_group("model")
    m.add_argument(
        "--model-path", default=None, help="PE-Rank checkpoint (default: trained small model, else assembled)"
    )
    m.add_argument("--llm", default="smollm2", help="LLM to assemble an untrained PE-Rank from (no checkpoint)")
    m.add_argument("--encoder", default="all-minilm-l6-v2", help="encoder to assemble an untrained PE-Rank from")
    m.add_argument("--text-model-path", default=None, help="LLM for listwise-text (default: the checkpoint's LLM)")
    m.add_argument("--synthetic", choices=sorted(SYNTHETIC), default=None, help="random-weight model of these shapes")
    m.add_argument("--max-length", type=int, default=256, help="encoder max length in synthetic mode")
    m.add_argument("--tokenizer", default=None, help="synthetic mode: LLM tokenizer folder (default: SmolLM2's)")
    m.add_argument(
        "--encoder-tokenizer", default=None, help="synthetic mode: encoder tokenizer folder (default: MiniLM's)"
    )
    m.add_argument("--device", default="cpu")
    m.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16")
    m.add_argument("--attn", default=None, help="attention implementation in synthetic mode (default: best available)")
    d = p.add_argument_group("data")
    d.add_argument("--dataset", default="dl19")
    d.add_argument("--retrieval-results", default=None, help="candidates file (default: the dataset's BM25 top-100)")
    d.add_argument("--qrels", default=None)
    d.add_argument("--topk", type=int, default=100)
    d.add_argument("--queries", type=int, default=43, help="timed queries (cycles through the file if larger)")
    d.add_argument(
        "--text-queries",
        type=int,
        default=10,
        help="timed queries for the slow configurations with passage text (listwise-text, listwise-text-embedding)",
    )
    d.add_argument(
        "--text-max-new-tokens",
        type=int,
        default=None,
        help="listwise-text answer limit (default: the reranker's 6n+10; synthetic: 5 per passage)",
    )
    r = p.add_argument_group("runs")
    r.add_argument(
        "--only", default=None, help=f"comma-separated configurations (default: {','.join(DEFAULT_CONFIGS)})"
    )
    r.add_argument("--skip", default="", help="comma-separated configurations to leave out")
    r.add_argument("--batch-size", type=int, default=8, help="queries per call in the batched configurations")
    r.add_argument("--window-size", type=int, default=20)
    r.add_argument("--step", type=int, default=10)
    r.add_argument("--embedding-cache", default=None, help="also run pe-rank-cached with this cache file")
    r.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: torch's choice)")
    r.add_argument("--breakdown", action=argparse.BooleanOptionalAction, default=None, help="per-part timings")
    r.add_argument("--profile", action="store_true", help="torch.profiler top operators for the PE-Rank configs")
    r.add_argument("--timeout", type=float, default=None, help="seconds allowed per configuration")
    r.add_argument("--in-process", action="store_true", help="no subprocesses (peak RSS is then cumulative)")
    o = p.add_argument_group("output")
    o.add_argument("--tag", default="cpu", help="file names: rerank_latency_{tag}.json/.md/.png")
    o.add_argument("--output-dir", default=str(RESULTS_DIR))
    o.add_argument("--replot", action="store_true", help="rewrite the .md and .png from the tag's existing .json")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker-output", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    if args.worker:
        entry = run_config(json.loads(args.worker))
        Path(args.worker_output).write_text(json.dumps(entry))
        return [entry]

    if args.replot:
        stem = Path(args.output_dir) / f"rerank_latency_{args.tag}"
        entries = json.loads(stem.with_suffix(".json").read_text())
        print(_write_outputs(entries, [], entries[0]["run"], stem, final=True))
        return entries

    names = [n for n in (args.only.split(",") if args.only else DEFAULT_CONFIGS) if n]
    if args.embedding_cache and "pe-rank-cached" not in names and not args.only:
        names.append("pe-rank-cached")
    skip = {n for n in args.skip.split(",") if n}
    unknown = sorted((set(names) | skip) - set(CONFIGS))
    if unknown:
        raise SystemExit(f"unknown configuration(s) {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
    names = [n for n in names if n not in skip]
    if "pe-rank-cached" in names and not args.embedding_cache:
        raise SystemExit("pe-rank-cached needs --embedding-cache PATH")

    model_path = text_model_path = None
    if args.synthetic:
        model_desc = f"synthetic {args.synthetic} (random weights)"
    else:
        model_path = str(Path(args.model_path or default_model_path(args.llm, args.encoder)).resolve())
        cfg_file = Path(model_path) / "perank_config.json"
        llm_name = json.loads(cfg_file.read_text())["llm_name"] if cfg_file.exists() else args.llm
        text_model_path = args.text_model_path or llm_name
        model_desc = f"{_short_path(model_path)} (listwise-text: {_short_path(text_model_path)})"

    base = {
        "device": args.device,
        "dtype": args.dtype,
        "attn": args.attn,
        "synthetic": args.synthetic,
        "max_length": args.max_length,
        "tokenizer": args.tokenizer and str(Path(args.tokenizer).resolve()),
        "encoder_tokenizer": args.encoder_tokenizer and str(Path(args.encoder_tokenizer).resolve()),
        "model_path": model_path,
        "text_model_path": text_model_path,
        "dataset": args.dataset,
        "retrieval_results": args.retrieval_results,
        "qrels": args.qrels,
        "topk": args.topk,
        "queries": args.queries,
        "text_queries": args.text_queries,
        "text_max_new_tokens": args.text_max_new_tokens,
        "batch_size": args.batch_size,
        "window_size": args.window_size,
        "step": args.step,
        "embedding_cache": args.embedding_cache,
        "threads": args.threads,
        "breakdown": args.breakdown,
        "profile": args.profile,
    }
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"rerank_latency_{args.tag}"
    meta = {
        "tag": args.tag,
        "when": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": _machine(args.device),
        "model": model_desc,
        "dataset": args.dataset,
        "topk": args.topk,
        "window_size": args.window_size,
        "step": args.step,
    }
    entries: list[dict[str, Any]] = []
    failed: list[str] = []
    for name in names:
        logger.info("running %s", name)
        spec = {**base, "name": name}
        try:
            entry = run_config(spec) if args.in_process else run_in_subprocess(spec, args.timeout)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            logger.error("%s", exc)
            failed.append(name)
            continue
        entry["run"] = meta
        entries.append(entry)
        _write_outputs(entries, failed, meta, stem, final=False)
        logger.info(
            "%s: median %.3f s/query, %.2f queries/s, %s tokens processed, nDCG@10 %s",
            name,
            entry["median_latency_s"],
            entry["queries_per_s"],
            _fmt(entry["tokens_processed"], 0),
            _fmt(entry["ndcg_cut_10"], 4),
        )

    md = _write_outputs(entries, failed, meta, stem, final=True)
    print(md)
    print("Ratios:")
    for desc, value, target in ratios(entries):
        print(f"  {desc}: {_fmt(value, 2)}  (target {target or '-'})")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")
    return entries


if __name__ == "__main__":
    main()
