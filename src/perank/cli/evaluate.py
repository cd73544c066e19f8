"""``python src/evaluate.py --datasets dl19 dl20 --reranker NAME``: rerank, write the runs, print metrics.

One run per dataset, written under ``results/reranking_results/`` with its metrics and accounting beside
it (see :mod:`perank.pipeline`). Reranker options are passed through generically: every option given on
the command line becomes a constructor keyword. The shared options (:data:`PASS_THROUGH`: ``--model-path``,
``--window-size``, ...) are dropped, with a note, for a family that does not take them, so one command line
works for every family; the registry checks the rest, as it does for every caller: any other option the family
does not take (``-o batch_sise=4``), or a value of the wrong type, is an error naming it (:func:`build_from_args`).
"""

from __future__ import annotations

import argparse
import ast
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from perank.cli.errors import add_debug_flag, run_guarded
from perank.types import InputError

if TYPE_CHECKING:
    from perank.distributed import World
    from perank.ranking.base import BaseReranker

#: the reranker the paper is about, run when ``--reranker`` is not given (always registered: ``perank.families``
#: imports it with every other family, so there is nothing to fall back from)
DEFAULT_RERANKER = "pe-rank"

logger = logging.getLogger(__name__)


def _parse_value(text: str) -> Any:
    """``--reranker-arg`` values: Python literals (1, 0.5, True, None, 'x') when they parse, else strings."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def build_from_args(args: argparse.Namespace) -> BaseReranker:
    """The reranker the command line asks for (``--reranker``, default :data:`DEFAULT_RERANKER`), built by the
    registry, which drops the shared options (:data:`PASS_THROUGH`: ``--model-path``, ``--window-size``, ...) the
    family has no use for, said in one note on stderr, and checks the rest, once: any other option the family does
    not take (``-o batch_sise=4``) or a value of the wrong type is an error naming it."""
    from perank.ranking.registry import build_with_shared_options

    name = args.reranker or DEFAULT_RERANKER
    reranker, dropped = build_with_shared_options(name, reranker_kwargs(args), PASS_THROUGH)
    if dropped:
        flags = ", ".join("--" + key.replace("_", "-") for key in dropped)
        print(f"note: reranker {name!r} does not use {flags}; ignored", file=sys.stderr)
    return reranker


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.splitlines()[0])
    data = parser.add_argument_group("data")
    data.add_argument(
        "--datasets",
        "--dataset",
        nargs="+",
        default=None,
        help="one run per dataset (default: dl19 dl20; with --retrieval-results alone, that file's candidates)",
    )
    data.add_argument("--retriever", default="bm25", help="first stage whose results are reranked")
    data.add_argument("--topk", type=int, default=100, help="candidates per query to rerank")
    data.add_argument("--retrieval-results", default=None, help="candidates file (JSONL or rank_llm JSON)")
    data.add_argument("--backend", default="auto", help="retrieval backend when retrieval has to run first")
    data.add_argument("--qrels", default=None, help="qrels file (default: the dataset's shipped qrels)")
    data.add_argument(
        "--strict",
        action="store_true",
        help="refuse a docid repeated in a query's hits (default: keep its first occurrence, with one warning)",
    )

    out = parser.add_argument_group("output")
    out.add_argument("--output-dir", default=None, help="where runs go (default: results/reranking_results)")
    out.add_argument("--run-name", default=None, help="replaces the model name in eval_{dataset}_{name}_top{k}.txt")
    out.add_argument("--overwrite", action="store_true", help="rerank again even if the run exists")
    out.add_argument("--complete", action="store_true", help="average over all judged queries (trec_eval -c)")
    out.add_argument(
        "--shuffle-input",
        default=None,
        metavar="reverse|SEED",
        help="permute each query's candidates before reranking (order sensitivity; the run name records it)",
    )
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_debug_flag(out)

    rr = parser.add_argument_group("reranker")
    rr.add_argument("--reranker", "--ranker", default=None, help=f"registry name (default: {DEFAULT_RERANKER})")
    rr.add_argument("--batch-size", type=int, default=None, help="queries per reranker call (and per checkpoint)")
    rr.add_argument("--model-path", default=None, help="model id or folder (the reranker's model_path)")
    rr.add_argument("--model-base", default=None, help="base model for adapter/projector-only checkpoints")
    rr.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda")
    rr.add_argument("--max-length", type=int, default=None, help="max tokens per passage for the encoder")
    rr.add_argument(
        "--max-query-length",
        type=int,
        default=None,
        help="query budget in the reranker's tokens (default: the family's own; longer queries are cut, counted)",
    )
    rr.add_argument("--window-size", type=int, default=None, help="listwise sliding window size (20)")
    rr.add_argument("--step", type=int, default=None, help="listwise sliding window step (10)")
    rr.add_argument(
        "--reranker-arg",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other constructor keyword, repeatable (e.g. -o batch_size=128)",
    )
    return parser


#: command-line options forwarded to the reranker's constructor when given
PASS_THROUGH = ("model_path", "model_base", "device", "max_length", "max_query_length", "window_size", "step")


def reranker_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Constructor keywords from the parsed options: the pass-through ones that were given, then ``-o``."""
    kwargs = {k: getattr(args, k) for k in PASS_THROUGH if getattr(args, k) is not None}
    for item in args.reranker_arg:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--reranker-arg {item!r}: expected KEY=VALUE")
        kwargs[key.strip().replace("-", "_")] = _parse_value(value)
    return kwargs


def check_output_dir(output_dir: str | None) -> None:
    """Fail now, before any model loads or query is reranked, if the run's folder cannot be created or written."""
    from pathlib import Path

    from perank.runs import default_output_dir

    folder = Path(output_dir) if output_dir is not None else default_output_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--output-dir {folder}: cannot create it ({exc.strerror or exc})") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"--output-dir {folder}: not writable")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input, with the reason on stderr)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return run_guarded(lambda: _run(args), args.debug)


def _run(args: argparse.Namespace) -> int:
    from perank.datasets import get_dataset
    from perank.distributed import detect_world, start, stop
    from perank.shuffle import parse_shuffle

    datasets: list[str | None]
    if args.datasets is None:
        datasets = [None] if args.retrieval_results else ["dl19", "dl20"]
    else:
        datasets = [get_dataset(name).name for name in args.datasets]  # a bad name fails before a model loads
    if len(datasets) > 1 and (args.retrieval_results or args.qrels):
        raise InputError("--retrieval-results and --qrels apply to one dataset; run one dataset at a time")
    if args.batch_size is not None and args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    args.shuffle_input = parse_shuffle(args.shuffle_input)
    check_output_dir(args.output_dir)
    world = detect_world()  # one process unless launched by torchrun
    args.device = start(world, args.device)  # --device cuda without CUDA fails here, for every family
    try:
        reranker = build_from_args(args)
        for dataset in datasets:
            _run_one(args, dataset, reranker, world)
    finally:
        stop(world)
    return 0


def _run_one(args: argparse.Namespace, dataset: str | None, reranker: BaseReranker, world: World) -> None:
    """One dataset's run; under torchrun this process reranks its shard (rank 0 also merges and scores)."""
    from perank.pipeline import DEFAULT_BATCH_SIZE, run_pipeline

    run_pipeline(
        dataset,
        reranker,
        retriever=args.retriever,
        topk=args.topk,
        retrieval_results=args.retrieval_results,
        qrels=args.qrels,
        output_dir=args.output_dir,
        batch_size=args.batch_size or DEFAULT_BATCH_SIZE,
        run_name=args.run_name,
        backend=args.backend,
        complete=args.complete,
        overwrite=args.overwrite,
        show_progress=not args.no_progress,
        world=world,
        shuffle_input=args.shuffle_input,
        strict=args.strict,
    )


if __name__ == "__main__":
    sys.exit(main())
