"""Untrusted files never run code: a scan of the package (its tools included) and the benchmarks.

Checkpoints and caches come from the hub or from other people. ``torch.load`` must pass ``weights_only=True``
(tensors only, no pickled objects); nothing reads pickles (``pickle``/``dill``/``cloudpickle``/``joblib``,
``numpy.load(allow_pickle=True)``); ``trust_remote_code`` is never switched on by the code itself (no literal
``trust_remote_code=True``, no parameter defaulting to True), only passed through when a user asks for it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers.paths import REPO

SOURCES = sorted(
    p for folder in ("src", "benchmarks") for p in (REPO / folder).rglob("*.py") if "fixtures" not in p.parts
)
PICKLE_MODULES = {"pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    name = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    where = lambda node: f"{name}:{node.lineno}"  # noqa: E731
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in PICKLE_MODULES:
                    found.append(f"{where(node)}: imports {name}")
        if isinstance(node, ast.Call):
            func = node.func
            keywords = {k.arg: k.value for k in node.keywords}
            if isinstance(func, ast.Attribute) and func.attr == "load":
                owner = func.value.id if isinstance(func.value, ast.Name) else ""
                if owner == "torch" and not _is_true(keywords.get("weights_only")):
                    found.append(f"{where(node)}: torch.load without weights_only=True")
                if owner in ("np", "numpy") and _is_true(keywords.get("allow_pickle")):
                    found.append(f"{where(node)}: numpy.load(allow_pickle=True)")
            if _is_true(keywords.get("trust_remote_code")):
                found.append(f"{where(node)}: trust_remote_code=True written into the code")
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            positional = args.posonlyargs + args.args
            defaults = dict(zip([a.arg for a in positional][len(positional) - len(args.defaults) :], args.defaults))
            defaults |= {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None}
            if _is_true(defaults.get("trust_remote_code")):
                found.append(f"{where(node)}: {node.name}(trust_remote_code=True) by default")
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "trust_remote_code"
            and _is_true(node.value)
        ):
            found.append(f"{where(node)}: trust_remote_code defaults to True")
    return found


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "probe.py"
    bad.write_text(
        "import pickle\nimport torch\nimport numpy as np\n"
        "torch.load('x')\ntorch.load('x', weights_only=False)\nnp.load('x', allow_pickle=True)\n"
        "f(trust_remote_code=True)\ndef g(trust_remote_code=True): ...\n"
    )
    assert len(violations(bad)) == 6


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_code_runs_from_untrusted_files(path: Path) -> None:
    assert violations(path) == []
