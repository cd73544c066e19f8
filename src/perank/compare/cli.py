"""``perank compare RUN RUN ... --dataset dl19``: is A better than B, and at what cost?

Prints one markdown table (a row per system: the measures, the paired test against the baseline with Holm's
correction, wins/ties/losses, the interval of the mean Δ, and the cost per query from each run's accounting) and
writes it as markdown, JSON and an HTML page with the quality-against-latency plot embedded (``PREFIX.md``,
``.json``, ``.html``, ``.png``; ``--per-query`` adds ``PREFIX.per_query.tsv``). See docs/compare.md.

    perank compare 'results/reranking_results/eval_dl19_*' --dataset dl19 --baseline identity
    perank compare bm25.trec dense.txt --qrels my.qrels --test randomization --per-query -o results/cmp/mine
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from perank.cli.errors import add_debug_flag, run_guarded
from perank.compare.measures import DEFAULT_MEASURES
from perank.compare.stats import TESTS
from perank.types import InputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perank compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("inputs", nargs="+", help="run files, their metrics JSON, or globs (quote them)")
    judged = parser.add_argument_group("judgments (one of)")
    judged.add_argument("--dataset", default=None, help="its shipped qrels, and its topics for the query texts")
    judged.add_argument("--qrels", default=None, help="a qrels file")
    stats = parser.add_argument_group("statistics")
    stats.add_argument("--baseline", default=None, help="the system the others are tested against (default: first)")
    stats.add_argument(
        "--measures",
        nargs="+",
        default=list(DEFAULT_MEASURES),
        help="NAME@K, the first one leads (default: %(default)s)",
    )
    stats.add_argument("--test", choices=tuple(TESTS), default="t", help="paired t-test or Fisher randomization")
    stats.add_argument("--resamples", type=int, default=10_000, help="randomization test: sign-flip samples")
    stats.add_argument("--seed", type=int, default=0, help="randomization test: seed of the samples")
    stats.add_argument("--alpha", type=float, default=0.05, help="significance level after Holm (CI: 1 - alpha)")
    stats.add_argument("--strict", action="store_true", help="refuse runs that answer different judged queries")
    stats.add_argument(
        "--order-pair", action="append", default=[], metavar="A:B", help="report B as A with its input shuffled"
    )
    out = parser.add_argument_group("output")
    out.add_argument("--name", action="append", default=[], metavar="OLD=NEW", help="rename a system (or a run file)")
    out.add_argument("--per-query", action="store_true", help="also write each query's values (TSV and HTML)")
    out.add_argument(
        "-o", "--output", default=None, help="output prefix (default: results/comparisons/compare_DATASET)"
    )
    out.add_argument("--title", default=None, help="the report's title")
    add_debug_flag(out)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input, with the reason on stderr)."""
    args = build_parser().parse_args(argv)
    return run_guarded(lambda: _run(args), args.debug)


def _judgments(args: argparse.Namespace) -> tuple[Path, str | None, dict[str, str]]:
    """The qrels path, the dataset name (or None) and the query texts (empty without a dataset)."""
    from perank.datasets import find_qrels, get_dataset
    from perank.io import read_topics

    if args.dataset is None and args.qrels is None:
        raise InputError("give --dataset NAME (its shipped qrels) or --qrels FILE")
    spec = get_dataset(args.dataset) if args.dataset else None
    qrels = find_qrels(spec.name if spec else None, args.qrels)
    if qrels is None:  # a dataset that ships no qrels: require() says how to get them
        qrels = spec.require("qrels_file")
    topics_file = spec.local("topics_file") if spec else None
    topics = read_topics(topics_file) if topics_file is not None and topics_file.exists() else {}
    return qrels, (spec.name if spec else None), topics


def _run(args: argparse.Namespace) -> int:
    from perank.compare.comparison import build_comparison
    from perank.compare.html import page
    from perank.compare.measures import parse_measures
    from perank.compare.plot import plot
    from perank.compare.report import as_json, markdown, per_query_table, tsv
    from perank.compare.systems import check_judged, load_systems, run_files
    from perank.datasets import results_dir
    from perank.io import atomic_write, read_qrels

    measures = parse_measures(args.measures)
    if args.resamples < 1:
        raise InputError(f"--resamples must be at least 1, got {args.resamples}")
    qrels_path, dataset, topics = _judgments(args)
    paths, notes = run_files(args.inputs)
    systems = load_systems(paths, args.name)
    qrels = read_qrels(qrels_path)
    check_judged(systems, qrels, str(qrels_path))
    comparison = build_comparison(
        systems,
        qrels,
        measures,
        baseline=args.baseline,
        test=args.test,
        alpha=args.alpha,
        strict=args.strict,
        pairs=args.order_pair,
        resamples=args.resamples,
        seed=args.seed,
    )
    comparison.qrels, comparison.dataset, comparison.topics = str(qrels_path), dataset, topics
    for note in notes + comparison.notes:
        print(f"note: {note}", file=sys.stderr)

    prefix = (
        Path(args.output) if args.output else results_dir() / "comparisons" / f"compare_{dataset or qrels_path.stem}"
    )
    title = args.title or f"{dataset or qrels_path.name}: {len(systems)} systems against {comparison.baseline}"
    outputs = {kind: prefix.with_name(prefix.name + kind) for kind in (".md", ".json", ".png", ".html")}
    report = markdown(comparison, title, per_query=args.per_query)
    with atomic_write(outputs[".md"]) as handle:
        handle.write(report)
    with atomic_write(outputs[".json"]) as handle:
        json.dump(as_json(comparison, per_query=args.per_query), handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    left_out = plot(comparison, outputs[".png"], title)
    if left_out:
        print(f"note: not in the plot (no latency recorded): {', '.join(left_out)}", file=sys.stderr)
    if args.per_query:
        outputs[".per_query.tsv"] = prefix.with_name(prefix.name + ".per_query.tsv")
        with atomic_write(outputs[".per_query.tsv"]) as handle:
            handle.write(tsv(per_query_table(comparison)))
    with atomic_write(outputs[".html"]) as handle:
        handle.write(page(comparison, title, outputs[".png"], args.per_query))
    print(report, end="")
    print(f"\nwrote {', '.join(str(p) for p in outputs.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
