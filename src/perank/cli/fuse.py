"""``perank fuse RUN RUN ...``: one run from several (RRF or score interpolation), written and scored like a
reranking run, so that ``perank compare`` takes it as a system of its own; ``perank reorder``: a candidates file
in the order of a run.

    perank fuse --method rrf eval_dl19_dense-all-MiniLM-L6-v2_top100.txt eval_dl19_colbert-minilm_top100.txt
    perank fuse --method interp A.txt B.txt --tune-qrels dl20.qrels -o fused.txt
    perank reorder --candidates bm25_dl19_top100.jsonl --run dense.txt -o dense_order.jsonl

The fused run goes to ``results/reranking_results/eval_{dataset}_{name}_top{k}.txt`` (or ``-o``), its metrics JSON
beside it records the fusion (method, weights, inputs), the metrics when qrels are known (``--dataset``, ``--qrels``,
or the dataset every input's metrics JSON records) and the accounting: each query's cost summed over the inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from perank.cli.errors import add_debug_flag, run_guarded
from perank.types import InputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perank fuse", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="TREC run files (two or more)")
    parser.add_argument("--method", choices=("rrf", "interp"), default="rrf", help="reciprocal rank or scores")
    parser.add_argument("--weights", type=float, nargs="+", help="one per run (default: all 1)")
    parser.add_argument("--rrf-k", type=int, default=60, help="RRF's k (60, as Cormack et al.)")
    parser.add_argument("--tune-qrels", type=Path, help="grid-search the first run's weight (0..1) on these qrels")
    parser.add_argument(
        "--name", "--tag", default=None, help="the fused run's label and TREC tag (default: METHOD-LABEL1-LABEL2...)"
    )
    parser.add_argument("--dataset", default=None, help="dataset of the runs (default: the one their JSONs record)")
    parser.add_argument("--qrels", default=None, help="qrels to score with (default: the dataset's shipped ones)")
    parser.add_argument("--output-dir", default=None, help="where the run goes (default: results/reranking_results)")
    parser.add_argument("-o", "--output", type=Path, default=None, help="the run's path (overrides --output-dir)")
    add_debug_flag(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input, with the reason on stderr)."""
    args = build_parser().parse_args(argv)
    return run_guarded(lambda: _fuse(args), args.debug)


def _agreed(values: list[Any]) -> Any:
    """The value every input records, or ``None`` when they differ or one records none."""
    return values[0] if values and values[0] is not None and all(v == values[0] for v in values) else None


def _fuse(args: argparse.Namespace) -> int:
    from perank.datasets import find_qrels, get_dataset
    from perank.fusion import fuse, fused_accounting, run_as_requests, tune_first_weight
    from perank.io import atomic_write, read_qrels, read_trec_run, write_trec_run
    from perank.metrics import HEADLINE, evaluate_run, format_metrics, metrics_path, read_metrics_json, score_run_file
    from perank.runs import default_output_dir, label_of_run_file, run_file_name, safe_name

    if len(args.runs) < 2:
        raise InputError("fuse needs at least two runs")
    runs = [read_trec_run(p) for p in args.runs]
    metas = [read_metrics_json(p) for p in args.runs]
    weights = list(args.weights or [1.0] * len(runs))
    if len(weights) != len(runs):
        raise InputError(f"--weights: {len(weights)} weights for {len(runs)} runs")
    if args.tune_qrels:
        tuning = read_qrels(args.tune_qrels)
        w, best = tune_first_weight(
            runs,
            args.method,
            lambda run: float(evaluate_run(run, tuning)[HEADLINE]),
            args.rrf_k,
            report=lambda w, s: print(f"w={w:.2f} nDCG@10={s:.4f}"),
        )
        weights = [w, 1 - w]
        print(f"best w={w:.2f} ({best:.4f} on {args.tune_qrels})")
    fused = fuse(runs, weights, args.method, args.rrf_k)

    dataset = get_dataset(args.dataset).name if args.dataset else _agreed([m.get("dataset") for m in metas])
    qrels = find_qrels(dataset, args.qrels)
    labels = [label_of_run_file(p, m.get("dataset")) for p, m in zip(args.runs, metas)]
    name = safe_name(args.name or f"{args.method}-" + "-".join(labels))
    if args.output is not None:
        out = args.output
    elif dataset is None:
        raise InputError("the runs record no common dataset: pass --dataset NAME, or -o FILE for the fused run")
    else:
        topk = _agreed([m.get("topk") for m in metas]) or max(len(docs) for docs in fused.values())
        out = (Path(args.output_dir) if args.output_dir else default_output_dir()) / run_file_name(dataset, name, topk)
    write_trec_run(out, run_as_requests(fused), tag=name)

    fusion = {"method": args.method, "weights": weights, "inputs": [str(p) for p in args.runs]}
    fusion |= {"rrf_k": args.rrf_k} if args.method == "rrf" else {}
    fusion |= {"tuned_on": str(args.tune_qrels)} if args.tune_qrels else {}
    info: dict[str, Any] = {"dataset": dataset, "run": str(out), "topk": _agreed([m.get("topk") for m in metas])}
    info |= {"reranker": {"reranker": "fusion", **fusion}}
    accounting = fused_accounting([m.get("accounting") for m in metas], list(fused))
    if accounting is not None:
        info["accounting"] = accounting
    with atomic_write(metrics_path(out)) as handle:  # a fresh file: nothing of an earlier fusion may linger
        json.dump(info, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    print(f"wrote {out} (weights {weights})")
    if qrels is not None:
        print(format_metrics(score_run_file(out, qrels)))
    else:
        print(f"no qrels known for {out.name}: pass --dataset or --qrels to score it", file=sys.stderr)
    return 0


def build_reorder_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perank reorder", description="a candidates file in the order of a run")
    parser.add_argument("--candidates", type=Path, required=True, help="retrieval-results JSONL or rank_llm JSON")
    parser.add_argument("--run", type=Path, required=True, help="TREC run holding every candidate")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the reordered candidates (JSONL)")
    add_debug_flag(parser)
    return parser


def reorder_main(argv: list[str] | None = None) -> int:
    """``perank reorder``: each query's hits in the run's order, scores from it (every candidate must be in it)."""
    args = build_reorder_parser().parse_args(argv)

    def run() -> int:
        from perank.fusion import reorder
        from perank.io import read_retrieval_results, read_trec_run, write_retrieval_results

        write_retrieval_results(args.output, reorder(read_retrieval_results(args.candidates), read_trec_run(args.run)))
        print(f"wrote {args.output}")
        return 0

    return run_guarded(run, args.debug)


if __name__ == "__main__":
    sys.exit(main())
