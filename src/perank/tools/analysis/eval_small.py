"""Evaluate a PE-Rank checkpoint on DL19/DL20 BM25 top-k with the package's ``pe-rank`` reranker (20/10 windows).

``perank eval-small``: a development helper for the small model, and a thin wrapper over
:func:`perank.pipeline.run_pipeline`, so its numbers are the pipeline's (same candidates, same scoring,
same run files). What it adds: encoder embeddings go through a persistent SQLite cache (``--cache``) so
repeated evaluations of checkpoints that share the encoder only pay for the LLM; ``--precompute`` fills the
cache and exits (run it while training is going on); ``--max-queries`` evaluates a quick subset; and a
one-line summary per dataset with BM25's nDCG@10 beside the checkpoint's.

Every evaluation reranks afresh (the pipeline's ``overwrite``): a checkpoint folder is rewritten while
training goes on, so a finished run file with the same name may come from other weights.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from perank.backends.embedding_cache import EmbeddingCache, encode_cached
from perank.cli.errors import run_guarded
from perank.datasets import find_qrels, get_dataset
from perank.io import read_qrels, write_retrieval_results
from perank.metrics import evaluate_run
from perank.pipeline import load_candidates, run_pipeline
from perank.types import Request


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="perank eval-small", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model-path", help="checkpoint folder (default: the pe-rank reranker's default checkpoint)")
    ap.add_argument("--datasets", nargs="+", default=["dl19"])
    ap.add_argument("--topk", type=int, default=100)
    ap.add_argument("--cache", default="work_train/emb.sqlite", help="SQLite encoder-embedding cache")
    ap.add_argument("--precompute", action="store_true", help="only fill --cache with the candidates' embeddings")
    ap.add_argument("--max-queries", type=int, default=0, help="evaluate only the first N queries (0 = all)")
    ap.add_argument("--retrieval-results", help="candidates file instead of the dataset's (one dataset only)")
    ap.add_argument("--qrels", help="qrels file instead of the dataset's")
    ap.add_argument("--output-dir", default="work_train/eval_small", help="where runs and metrics are written")
    return ap


def run_name(model_path: str | None, max_queries: int) -> str | None:
    """Name runs after the checkpoint's last two path parts (``s2/checkpoint-500``), so checkpoints never share one."""
    if not model_path:
        return None  # the pipeline's own label
    name = "-".join(Path(model_path).parts[-2:])
    return f"{name}-q{max_queries}" if max_queries else name


def candidates(name: str, args: argparse.Namespace) -> list[Request]:
    """The candidates to rerank: the pipeline's own for ``name``, cut to ``--topk`` and ``--max-queries``."""
    requests = load_candidates(name, topk=args.topk, retrieval_results=args.retrieval_results)
    return requests[: args.max_queries] if args.max_queries else requests


def candidates_file(name: str, requests: list[Request], args: argparse.Namespace, out_dir: Path) -> str | None:
    """The file that gives the pipeline exactly ``requests`` (None: its default), written for a query subset."""
    if not args.max_queries:
        return args.retrieval_results
    subset = out_dir / f"candidates_{name}_q{args.max_queries}_top{args.topk}.jsonl"
    write_retrieval_results(subset, requests)
    return str(subset)


def precompute(name: str, requests: list[Request], cache: EmbeddingCache) -> None:
    """Encode every candidate and query text into the cache (only the misses are encoded)."""
    from perank.backends.encoder import PassageEncoder

    # the small model's encoder settings: they are part of the cache key, so they must match the checkpoint's
    enc = PassageEncoder("all-minilm-l6-v2", pooling="mean", max_length=256)
    texts = [c.text for r in requests for c in r.candidates] + [r.query.text for r in requests]
    t0 = time.time()
    encode_cached(enc, texts, cache)
    print(f"{name}: cached {len(texts)} texts in {time.time() - t0:.0f}s", file=sys.stderr)


def bm25_ndcg10(requests: list[Request], qrels: Path) -> float:
    """nDCG@10 of the first-stage order itself, the baseline a reranker has to beat."""
    run = {r.query.qid: {c.docid: float(-i) for i, c in enumerate(r.candidates)} for r in requests}
    return evaluate_run(run, read_qrels(qrels))["ndcg_cut_10"]


def run(argv: list[str] | None = None) -> int:
    """Precompute or evaluate as the options say; an InputError goes to the caller."""
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.retrieval_results and len(args.datasets) > 1:
        ap.error("--retrieval-results holds one dataset's candidates: pass a single --datasets name")
    evaluate(args)
    return 0


def evaluate(args: argparse.Namespace) -> None:
    """Precompute or evaluate every dataset of ``args`` in turn."""
    out_dir = Path(args.output_dir)
    for name in args.datasets:
        name = get_dataset(name).name  # unknown names fail before any work, listing the known ones
        qrels = find_qrels(name, args.qrels)
        requests = candidates(name, args)
        if args.precompute:
            precompute(name, requests, EmbeddingCache(args.cache))
            continue
        retrieval_results = candidates_file(name, requests, args, out_dir)
        t0 = time.time()
        _, metrics = run_pipeline(
            name,
            "pe-rank",
            topk=args.topk,
            retrieval_results=retrieval_results,
            qrels=qrels,
            output_dir=out_dir,
            run_name=run_name(args.model_path, args.max_queries),
            overwrite=True,
            reranker_kwargs={"model_path": args.model_path, "batch_size": 8, "embedding_cache": args.cache},
        )
        if qrels is not None:  # else the pipeline said the run is not scored
            base, seconds = bm25_ndcg10(requests, qrels), time.time() - t0
            print(f"{name}\tndcg_cut_10\t{metrics['ndcg_cut_10']:.4f}\t(bm25 {base:.4f})\t{seconds:.0f}s")


def main(argv: list[str] | None = None) -> int:
    """``perank eval-small``: :func:`run`, bad input or an unreadable file as one line and exit status 2."""
    return run_guarded(lambda: run(argv))
