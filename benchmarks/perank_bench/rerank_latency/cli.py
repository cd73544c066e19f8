"""The benchmark's command line: ``python benchmarks/run.py rerank_latency ...`` (see benchmarks/README.md).

Three modes: the driver (default), ``--replot`` (rewrite a record's table and plot from its JSON), and the
hidden ``--worker`` mode in which the driver runs each configuration in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from perank_bench.paths import RESULTS_DIR
from perank_bench.plot import fmt
from perank_bench.rerank_latency.configs import DEFAULT_CONFIGS, SYNTHETIC, select_configs
from perank_bench.rerank_latency.driver import base_spec, resolve_models, run_all, run_meta
from perank_bench.rerank_latency.report import ratios, write_outputs
from perank_bench.rerank_latency.worker import run_config

DESCRIPTION = "Rerank latency benchmark: does PE-Rank's one-token-per-passage actually make ranking faster?"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; every one of them reaches the run (none is accepted and ignored)."""
    p = argparse.ArgumentParser(
        prog="run.py rerank_latency", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
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


def _check_dtype(dtype: str) -> None:
    """Refuse an unknown ``--dtype`` before any configuration starts, not once in every worker."""
    from perank.backends.runtime import parse_dtype
    from perank.types import InputError

    try:
        parse_dtype(dtype)
    except InputError as exc:
        raise SystemExit(f"--dtype: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or one worker, or a replot); the record is the output, a failed configuration exits 1."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    if args.worker:
        entry = run_config(json.loads(args.worker))
        Path(args.worker_output).write_text(json.dumps(entry))
        return 0

    if args.replot:
        stem = Path(args.output_dir) / f"rerank_latency_{args.tag}"
        entries = json.loads(stem.with_suffix(".json").read_text())
        print(write_outputs(entries, [], entries[0]["run"], stem, final=True))
        return 0

    names = select_configs(args.only, args.skip, args.embedding_cache)
    _check_dtype(args.dtype)
    model_path, text_model_path, model_desc = resolve_models(args)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"rerank_latency_{args.tag}"
    meta = run_meta(args, model_desc)
    base = base_spec(args, model_path, text_model_path)
    entries, failed, md = run_all(names, base, meta, stem, args.in_process, args.timeout)
    print(md)
    print("Ratios:")
    for desc, value, target in ratios(entries):
        print(f"  {desc}: {fmt(value, 2)}  (target {target or '-'})")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")
    return 0
