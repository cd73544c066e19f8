#!/usr/bin/env python
"""Evaluate a PE-Rank checkpoint on DL19/DL20 BM25 top-k with the package's ``pe-rank`` reranker (20/10 windows).

A development helper for the small model (not part of the package): encoder embeddings go through a
persistent SQLite cache (``--cache``) so repeated evaluations of checkpoints that share the encoder only
pay for the LLM. ``--precompute`` fills the cache and exits (run it while training is going on).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from perank.backends.embedding_cache import EmbeddingCache, encode_cached  # noqa: E402
from perank.datasets import get_dataset  # noqa: E402
from perank.io import read_qrels, read_retrieval_results  # noqa: E402
from perank.metrics import evaluate_run  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model-path")
    ap.add_argument("--datasets", nargs="+", default=["dl19"])
    ap.add_argument("--topk", type=int, default=100)
    ap.add_argument("--cache", default="work_train/emb.sqlite")
    ap.add_argument("--precompute", action="store_true")
    ap.add_argument("--max-queries", type=int, default=0)
    ap.add_argument("--retrieval-results", help="candidates file instead of the dataset's (one dataset only)")
    ap.add_argument("--qrels", help="qrels file instead of the dataset's")
    args = ap.parse_args()
    cache = EmbeddingCache(args.cache)
    for name in args.datasets:
        spec = get_dataset(name)
        requests = read_retrieval_results(args.retrieval_results or spec.require("candidates_file"))
        if args.max_queries:
            requests = requests[: args.max_queries]
        for r in requests:
            r.candidates = r.candidates[: args.topk]
        if args.precompute:
            from perank.backends.encoder import PassageEncoder

            enc = PassageEncoder("all-minilm-l6-v2", pooling="mean", max_length=256)
            texts = [c.text for r in requests for c in r.candidates] + [r.query.text for r in requests]
            t0 = time.time()
            encode_cached(enc, texts, cache)
            print(f"{name}: cached {len(texts)} texts in {time.time() - t0:.0f}s", file=sys.stderr)
            continue
        from perank.families.pe_rank.reranker import PERankReranker

        reranker = PERankReranker(args.model_path, batch_size=8)
        reranker.model.encoder.cache = cache
        t0 = time.time()
        results = reranker.rerank(requests)
        run = {r.query.qid: {c.docid: float(-i) for i, c in enumerate(r.candidates)} for r in results}
        bm25 = {r.query.qid: {c.docid: float(-i) for i, c in enumerate(r.candidates)} for r in requests}
        qrels = read_qrels(args.qrels or spec.require("qrels_file"))
        m = evaluate_run(run, qrels)
        b = evaluate_run(bm25, qrels)
        print(f"{name}\tndcg_cut_10\t{m['ndcg_cut_10']:.4f}\t(bm25 {b['ndcg_cut_10']:.4f})\t{time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
