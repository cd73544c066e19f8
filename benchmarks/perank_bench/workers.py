"""One configuration in a fresh worker process, and the machine the record says the numbers come from.

A process per configuration keeps one configuration's peak memory (and allocator state, and warm caches) out of
the next one's numbers. The worker is the same launcher, ``benchmarks/run.py NAME --worker SPEC``, so it finds
this package the way the driver did; it imports the very ``perank`` the driver imported (that package's folder
goes first on its ``PYTHONPATH``), so a checkout is never measured with another installed copy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from perank_bench.paths import RUN_SCRIPT


def child_env() -> dict[str, str]:
    """The environment of a child process: offline hub, and the driver's own ``perank`` importable first."""
    import perank

    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    paths = [str(Path(perank.__file__).resolve().parents[1])]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_in_subprocess(benchmark: str, spec: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
    """Run one configuration as ``run.py BENCHMARK --worker SPEC`` and read back its entry.

    A worker that fails may leave ``{"error": "..."}`` as its entry, which becomes the exception's reason.
    """
    with tempfile.TemporaryDirectory(prefix=f"{benchmark}.") as tmp:
        out = Path(tmp) / "entry.json"
        cmd = [sys.executable, str(RUN_SCRIPT), benchmark, "--worker", json.dumps(spec), "--worker-output", str(out)]
        proc = subprocess.run(cmd, env=child_env(), timeout=timeout_s)
        entry = json.loads(out.read_text()) if out.exists() else {}
        if proc.returncode != 0 or not entry or "error" in entry:
            reason = entry.get("error") or f"exit code {proc.returncode}"
            raise RuntimeError(f"configuration {spec['name']} failed ({reason})")
        return entry


def machine(device: str) -> str:
    """What the numbers were measured on, for the record's header."""
    import platform

    desc = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible"
    if device.startswith("cuda"):
        try:
            import torch

            desc = torch.cuda.get_device_name(0) + "; " + desc
        except Exception:
            pass
    return desc
