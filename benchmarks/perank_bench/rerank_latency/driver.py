"""The driver: one fresh process per configuration, then the record after each.

A process per configuration keeps one configuration's peak memory (and allocator state, and warm caches) out
of the next one's numbers; ``--in-process`` trades that for building a synthetic model once.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import time
from pathlib import Path
from typing import Any

from perank_bench.paths import short_path
from perank_bench.plot import fmt
from perank_bench.rerank_latency.models import default_model_path
from perank_bench.rerank_latency.report import write_outputs
from perank_bench.rerank_latency.synthetic import SyntheticModels
from perank_bench.rerank_latency.worker import run_config
from perank_bench.workers import machine, run_in_subprocess

logger = logging.getLogger(__name__)


def resolve_models(args: argparse.Namespace) -> tuple[str | None, str | None, str]:
    """(PE-Rank checkpoint, listwise-text LLM, description for the record); no paths in synthetic mode."""
    if args.synthetic:
        return None, None, f"synthetic {args.synthetic} (random weights)"
    model_path = str(Path(args.model_path or default_model_path(args.llm, args.encoder)).resolve())
    cfg_file = Path(model_path) / "perank_config.json"
    llm_name = json.loads(cfg_file.read_text())["llm_name"] if cfg_file.exists() else args.llm
    text_model_path = args.text_model_path or llm_name
    return model_path, text_model_path, f"{short_path(model_path)} (listwise-text: {short_path(text_model_path)})"


def base_spec(args: argparse.Namespace, model_path: str | None, text_model_path: str | None) -> dict[str, Any]:
    """What every configuration's worker gets (plus its ``name``): plain JSON, so it crosses a process."""
    return {
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


def run_meta(args: argparse.Namespace, model_desc: str) -> dict[str, Any]:
    """The record's header, also stored in every entry (``run``) so that ``--replot`` can rewrite it."""
    return {
        "tag": args.tag,
        "when": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(args.device),
        "model": model_desc,
        "dataset": args.dataset,
        "topk": args.topk,
        "window_size": args.window_size,
        "step": args.step,
    }


def run_all(
    names: list[str],
    base: dict[str, Any],
    meta: dict[str, Any],
    stem: Path,
    in_process: bool,
    timeout_s: float | None,
) -> tuple[list[dict[str, Any]], list[str], str]:
    """Run the configurations in order: (entries, failed names, final markdown). A failure does not stop the rest."""
    entries: list[dict[str, Any]] = []
    failed: list[str] = []
    models = SyntheticModels()
    for name in names:
        logger.info("running %s", name)
        spec = {**base, "name": name}
        try:
            entry = run_config(spec, models) if in_process else run_in_subprocess("rerank_latency", spec, timeout_s)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            logger.error("%s", exc)
            failed.append(name)
            continue
        entry["run"] = meta
        entries.append(entry)
        write_outputs(entries, failed, meta, stem, final=False)
        logger.info(
            "%s: median %.3f s/query, %.2f queries/s, %s tokens processed, nDCG@10 %s",
            name,
            entry["median_latency_s"],
            entry["queries_per_s"],
            fmt(entry["tokens_processed"], 0),
            fmt(entry["ndcg_cut_10"], 4),
        )
    return entries, failed, write_outputs(entries, failed, meta, stem, final=True)
