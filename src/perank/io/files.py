"""Opening and writing files: atomic writes, gzip, and line-by-line UTF-8 decoding that names the bad line.

Every write is atomic (a temporary file in the same folder, then ``os.replace``) so an interrupted run never
leaves a half-written file behind. Every text file is read as UTF-8 with an optional byte-order mark
(``utf-8-sig``, as most tools read it): a BOM that an editor saved is skipped, never parsed as text.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from perank.types import InputError

PathLike = str | os.PathLike[str]
#: the byte-order mark some editors put at the start of a UTF-8 file
BOM = b"\xef\xbb\xbf"


@contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` and move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name: a later write can tell a killed writer's leftover from a live one's
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs = {"encoding": encoding} if "b" not in mode else {}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; give the result the permissions a plain open() would have
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    remove_orphaned_temps(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_orphaned_temps(path: Path) -> None:
    """Delete the temporary files of ``path`` left by writers that were killed mid-write (SIGKILL skips the
    cleanup above); files of writers still running on this machine are kept."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with suppress(FileNotFoundError):
                tmp.unlink()


#: what reading a damaged or mislabelled ``.gz`` file raises
GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def open_text(path: PathLike) -> IO[str]:
    """Open a text file (gzip when the name ends in .gz) and fail with a clear message if it is missing."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def open_binary(path: PathLike) -> IO[bytes]:
    """Open a file for reading bytes (gunzipping ``.gz``); a clear error if it is missing."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def text_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """Yield (line number, line) and turn a decoding failure into an error naming the line (a BOM is skipped).

    Lines are read as bytes and decoded one by one: a text-mode reader decodes ahead in 8 KiB chunks,
    so its error would name whichever line happened to trigger the chunk rather than the bad one.
    """
    lineno = 0
    try:
        with open_binary(path) as handle:
            for lineno, raw in enumerate(handle, start=1):
                if lineno == 1 and raw.startswith(BOM):
                    raw = raw[len(BOM) :]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(f"{path}:{lineno}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
                if line.endswith("\r\n"):
                    line = line[:-2] + "\n"
                yield lineno, line
    except GZIP_ERRORS as exc:
        raise InputError(f"{path}:{lineno + 1}: not a valid gzip file ({exc})") from exc
