"""``perank COMMAND ...``: one entry point for the toolkit's commands.

Each command keeps its own parser and one-line errors (:mod:`perank.cli.errors`); this only dispatches, so
``perank compare ...`` and ``python -m perank.compare ...`` are the same program, as are ``perank evaluate`` and
``src/evaluate.py``.
"""

from __future__ import annotations

import importlib
import sys

#: command -> (module, function, what it does); modules are imported only when their command runs
COMMANDS: dict[str, tuple[str, str, str]] = {
    "compare": ("perank.compare.cli", "main", "compare systems: quality, significance, per-query wins, cost, plot"),
    "fuse": ("perank.cli.fuse", "main", "fuse runs (RRF or score interpolation) into a scored run"),
    "reorder": ("perank.cli.fuse", "reorder_main", "a candidates file in the order of a run"),
    "evaluate": ("perank.cli.evaluate", "main", "rerank datasets and score the runs (src/evaluate.py)"),
    "retrieve": ("perank.cli.run_evaluation", "main", "first-stage retrieval (src/scripts/run_evaluation.py)"),
    "trec-eval": ("perank.cli.trec_eval", "main", "score a TREC run (src/scripts/trec_eval.py)"),
    "train": ("perank.cli.train", "main", "training (src/train.py)"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: perank COMMAND [options]   (perank COMMAND --help for a command's options)", "", "commands:"]
    lines += [f"  {name:<{width}}  {what}" for name, (_, _, what) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the command named by the first argument; exit status 2 (with the list of commands) for an unknown one."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        from perank.ranking.options import suggest

        print(
            f"error: unknown command {command!r}{suggest(command, COMMANDS)}; known: {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    module, function, _ = COMMANDS[command]
    return int(getattr(importlib.import_module(module), function)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
