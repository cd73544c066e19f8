"""``perank COMMAND ...`` (or ``python -m perank COMMAND ...``): one entry point for the toolkit's commands.

Each command keeps its own parser and one-line errors (:mod:`perank.cli.errors`); this only dispatches, so
``perank compare ...`` and ``python -m perank.compare ...`` are the same program, as are ``perank evaluate`` and
``src/evaluate.py``. The repository's tools (data builders, checkpoint tools, analysis, the regression check:
:mod:`perank.tools`) are commands here too, one way to run each of them.
"""

from __future__ import annotations

import importlib
import sys
from typing import NamedTuple


class Command(NamedTuple):
    """Where a command lives (imported only when it runs), what it does, and the group ``--help`` lists it in."""

    module: str
    function: str
    what: str
    group: str


RANKING, DATA, CHECKPOINTS, ANALYSIS = "ranking", "training data", "checkpoints", "analysis and checks"

COMMANDS: dict[str, Command] = {
    "evaluate": Command("perank.cli.evaluate", "main", "rerank datasets and score the runs (src/evaluate.py)", RANKING),
    "retrieve": Command(
        "perank.cli.retrieve", "main", "first-stage retrieval (src/scripts/run_evaluation.py)", RANKING
    ),
    "trec-eval": Command("perank.cli.trec_eval", "main", "score a TREC run (src/scripts/trec_eval.py)", RANKING),
    "train": Command("perank.cli.train", "main", "training (src/train.py)", RANKING),
    "compare": Command(
        "perank.compare.cli", "main", "compare systems: quality, significance, per-query wins, cost, plot", RANKING
    ),
    "fuse": Command("perank.cli.fuse", "main", "fuse runs (RRF or score interpolation) into a scored run", RANKING),
    "reorder": Command("perank.cli.fuse", "reorder_main", "a candidates file in the order of a run", RANKING),
    "build-alignment-data": Command(
        "perank.tools.data.alignment_rows", "main", "stage-1 rows: reconstruct a passage from its token", DATA
    ),
    "build-rank-data": Command(
        "perank.tools.data.rank_windows", "main", "stage-2 windows: candidates in a teacher's order", DATA
    ),
    "build-pair-data": Command(
        "perank.tools.data.pair_groups", "main", "query groups (positives, negatives) for the encoder families", DATA
    ),
    "build-small-mix": Command(
        "perank.tools.data.small_mix", "main", "the small models' candidate lists: many queries, none from DL19", DATA
    ),
    "mix-train-rows": Command(
        "perank.tools.data.mix_rows", "main", "several row files into one, at most N windows per query", DATA
    ),
    "export-checkpoint": Command(
        "perank.tools.checkpoints.export",
        "main",
        "a LoRA PE-Rank Trainer checkpoint to the shipped folder",
        CHECKPOINTS,
    ),
    "half-weights": Command(
        "perank.tools.checkpoints.half_weights", "main", "weight files' float tensors to float16, in place", CHECKPOINTS
    ),
    "init-projector": Command(
        "perank.tools.checkpoints.init_projector", "main", "a projector warm start instead of stage 1", CHECKPOINTS
    ),
    "eval-small": Command(
        "perank.tools.analysis.eval_small", "main", "a PE-Rank checkpoint on DL19/DL20, embeddings cached", ANALYSIS
    ),
    "first-step-agreement": Command(
        "perank.tools.analysis.first_step_agreement", "main", "a checkpoint's first step vs the dense teacher", ANALYSIS
    ),
    "runs-table": Command(
        "perank.tools.analysis.runs_table", "main", "one markdown table of runs' metrics and cost", ANALYSIS
    ),
    "regress": Command("perank.tools.regress", "main", "rerun results/expected/ and compare (make regress)", ANALYSIS),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: perank COMMAND [options]   (perank COMMAND --help for a command's options)"]
    for group in dict.fromkeys(c.group for c in COMMANDS.values()):
        lines += ["", f"{group}:"]
        lines += [f"  {name:<{width}}  {c.what}" for name, c in COMMANDS.items() if c.group == group]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the command named by the first argument; exit status 2 (with the list of commands) for an unknown one."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        from perank.ranking.options import suggest

        print(
            f"error: unknown command {name!r}{suggest(name, COMMANDS)}; known: {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    command = COMMANDS[name]
    return int(getattr(importlib.import_module(command.module), command.function)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
