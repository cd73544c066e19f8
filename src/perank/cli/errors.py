"""One error style for every command: an expected failure is one line on stderr and exit status 2.

Expected failures are bad input (:class:`perank.types.InputError`, whose message names the file and line,
the option or the name) and the operating system refusing a file (:class:`OSError`: missing, unreadable,
a folder that cannot be created). Their traceback helps nobody, so it is shown only with ``--debug`` or
``PERANK_DEBUG=1``. Anything else is a bug and keeps its traceback. Ctrl-C ends with status 130 and a hint
that the same command resumes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from perank.types import InputError

#: exit status of a command that stopped on bad input
BAD_INPUT = 2


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug", action="store_true", help="show the Python traceback of an error (also PERANK_DEBUG=1)"
    )


def debug_enabled(flag: bool = False) -> bool:
    return flag or os.environ.get("PERANK_DEBUG", "").strip() not in ("", "0", "false", "False")


def describe_error(exc: BaseException) -> str:
    """The one line printed for an expected failure."""
    if isinstance(exc, OSError) and not isinstance(exc, InputError):
        name = exc.filename if exc.filename is not None else ""
        reason = exc.strerror or str(exc)
        return f"{name}: {reason}" if name else reason
    return str(exc)


def run_guarded(command: Callable[[], int], debug: bool = False) -> int:
    """``command()``'s exit status; an InputError or OSError becomes ``error: ...`` on stderr and status 2."""
    try:
        return command()
    except (InputError, OSError) as exc:
        if debug_enabled(debug):
            raise
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        if debug_enabled(debug):
            raise
        print("interrupted; finished work is kept, rerun the same command to resume", file=sys.stderr)
        return 130
