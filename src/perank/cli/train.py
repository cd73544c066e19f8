"""Train a reranker family: ``src/train.py [--family NAME] FLAGS...`` (default family: ``pe-rank``).

``--family NAME`` (or ``--family=NAME``) may appear anywhere; it is taken out and every other argument goes
to that family's runner (:mod:`perank.training.runner`), so the original PE-Rank commands
(``deepspeed src/train.py --deepspeed scripts/zero2.json ...``, scripts/train_s1.sh, scripts/train_s2.sh)
run unchanged. What the PE-Rank runner does: :mod:`perank.families.pe_rank.training.runner`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from perank.cli.errors import run_guarded
from perank.training.runner import DEFAULT_FAMILY, available_runners, get_runner
from perank.types import InputError

FAMILY_FLAG = "--family"


def split_family(argv: Sequence[str]) -> tuple[str, list[str]]:
    """``(family, the other arguments)``: ``--family NAME`` / ``--family=NAME`` taken out of ``argv``."""
    family: str | None = None
    rest: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == FAMILY_FLAG or arg.startswith(FAMILY_FLAG + "="):
            if arg == FAMILY_FLAG:
                if i + 1 >= len(args) or args[i + 1].startswith("--"):
                    raise InputError(f"--family needs a name; known: {', '.join(available_runners())}")
                value, i = args[i + 1], i + 2
            else:
                value, i = arg.split("=", 1)[1], i + 1
            if family is not None and value != family:
                raise InputError(f"--family given twice ({family!r} and {value!r}): pass one")
            family = value
            continue
        rest.append(arg)
        i += 1
    return family or DEFAULT_FAMILY, rest


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen family's training; bad input prints ``error: ...`` and returns 2 (the traceback with
    ``PERANK_DEBUG=1``: ``--debug`` is a transformers TrainingArguments flag of its own here)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stderr)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    def command() -> int:
        family, rest = split_family(sys.argv[1:] if argv is None else argv)
        get_runner(family).run(rest)
        return 0

    return run_guarded(command)


if __name__ == "__main__":
    raise SystemExit(main())
