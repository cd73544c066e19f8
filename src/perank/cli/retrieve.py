"""First-stage retrieval: ``perank retrieve --dataset NAME --retriever bm25 --topk K``.

The PE-Rank repository's command line for it, ``python src/scripts/run_evaluation.py ...``, is a launcher of this
module (its name is kept for that repository's users; what it does is retrieval, hence this module's name).

Writes ``results/retrieval_results/{retriever}/{NAME}_top{K}.jsonl`` (the file rerankers read) and the
matching TREC run beside it (``.trec``), then prints nDCG@10 when the dataset ships qrels, so a retrieval
run can be checked against published BM25 numbers at once (DL19 0.5058, DL20 0.4796, ArguAna 0.397).
"""

from __future__ import annotations

import argparse
import logging
import sys

from perank.cli.errors import add_debug_flag, run_guarded


def build_parser() -> argparse.ArgumentParser:
    from perank.retrieval import BACKENDS, RETRIEVERS

    parser = argparse.ArgumentParser(
        prog="run_evaluation.py",
        description="First-stage retrieval: write the candidates of every query (JSONL + TREC run) and print nDCG@10.",
    )
    parser.add_argument(
        "--dataset", required=True, help="dataset, PE-Rank's or BEIR's name (dl19, covid, arguana, ...)"
    )
    parser.add_argument("--retriever", default="bm25", choices=RETRIEVERS, help="first-stage retriever (default: bm25)")
    parser.add_argument("--topk", type=int, default=100, help="candidates per query (default: 100)")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="auto: shipped candidates if any, else bm25s over a shipped corpus, else Pyserini's prebuilt index "
        "(needs network); bm25s: embedded BM25 over a local corpus; pyserini: Lucene (local index from a shipped "
        "corpus, else the prebuilt index)",
    )
    parser.add_argument(
        "--output", default=None, help="results JSONL (default: results/retrieval_results/RETRIEVER/NAME_topK.jsonl)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    add_debug_flag(parser)
    return parser


def ndcg10(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> float:
    """nDCG@10 averaged as :func:`perank.metrics.evaluate_run` averages (over judged queries in the run)."""
    from perank.metrics import evaluate_run

    return evaluate_run(run, qrels)["ndcg_cut_10"]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input, with the reason on stderr)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    return run_guarded(lambda: _run(args), args.debug)


def _run(args: argparse.Namespace) -> int:
    from perank.datasets import get_dataset
    from perank.io import read_qrels, read_trec_run
    from perank.retrieval import resolve_backend, run_retrieval, trec_path_for

    spec = get_dataset(args.dataset)
    source = resolve_backend(spec, args.backend)
    path = run_retrieval(spec.name, args.retriever, args.topk, args.backend, output=args.output)
    trec = trec_path_for(path)
    print(f"wrote {path}", file=sys.stderr)
    print(f"wrote {trec}", file=sys.stderr)
    qrels_path = spec.local("qrels_file")
    if qrels_path is not None and qrels_path.exists():
        score = ndcg10(read_trec_run(trec), read_qrels(qrels_path))
        print(f"# {spec.name} {args.retriever} ({source}) top{args.topk}", file=sys.stderr)
        print(f"ndcg_cut_10\t{score:.4f}")
    else:
        print(f"no qrels shipped for {spec.name}; not scored", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
