"""``python src/scripts/trec_eval.py --dataset dl19 --ranking RUN``: print a run's metrics and save them.

The qrels default to the dataset's shipped file, so scoring works offline; ``--qrels`` scores against any
other file. The measure lines are the ones ``evaluate.py`` prints, so numbers can be compared by eye.
"""

from __future__ import annotations

import argparse
import sys

from perank.cli.errors import add_debug_flag, run_guarded


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trec_eval.py", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="dl19", help="dataset name (its shipped qrels are the default)")
    parser.add_argument("--ranking", required=True, help="TREC run file: qid Q0 docid rank score tag")
    parser.add_argument("--qrels", default=None, help="qrels file (default: the dataset's shipped qrels)")
    parser.add_argument("--output", default=None, help="metrics JSON path (default: <ranking>.metrics.json)")
    parser.add_argument("--no-save", action="store_true", help="print only; write no metrics JSON")
    parser.add_argument(
        "--complete",
        action="store_true",
        help="average over all judged queries, missing ones counting 0 (trec_eval -c); default: as PE-Rank",
    )
    add_debug_flag(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input, with the reason on stderr)."""
    args = build_parser().parse_args(argv)
    return run_guarded(lambda: _run(args), args.debug)


def _run(args: argparse.Namespace) -> int:
    from perank.datasets import find_qrels, get_dataset
    from perank.io import read_qrels, read_trec_run
    from perank.metrics import evaluate_run, format_metrics, score_run_file

    # no qrels at all is an error here (nothing to score), worded by require(): how to get them
    qrels = find_qrels(args.dataset, args.qrels) or get_dataset(args.dataset).require("qrels_file")
    if args.no_save:
        metrics = evaluate_run(read_trec_run(args.ranking), read_qrels(qrels), complete=args.complete)
    else:
        metrics = score_run_file(args.ranking, qrels, args.output, complete=args.complete)
    print(format_metrics(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
