"""A family's manifest: the one place a family says what it offers, read without importing its code.

Every family package declares one :class:`Family` (``perank/families/<family>/manifest.py``, ``FAMILY = ...``; a
third-party package the same, announced by an entry point, see :mod:`perank.ranking.catalogue`):

- its rerankers: the names ``evaluate.py --reranker`` and ``perank.Reranker`` take, aliases included, each with
  where its class lives (``"package.module:Class"``, imported only when that reranker is asked for) and the tiny
  configuration the contract test builds it with (``tests/families/test_contract.py``);
- its training runners: the names ``src/train.py --family`` takes, with where each runner class lives.

Targets are strings so that listing every family imports no model code, and looking up one runner imports no other
family's training code. A class may be given directly instead (a test's own family, a plugin that is cheap to
import). This module knows no family and imports nothing heavy: the families import it, never the reverse.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

#: where a class lives: ``"package.module:Class"`` (imported on first use), or the class itself
Target = str | type


class TinyFixtures(Protocol):
    """What the test suite provides to build any family cheaply (random-weight models of a few layers each).

    ``tests/conftest.py`` implements it; a manifest's tiny configuration receives it and returns constructor
    options, so the knowledge of how to build a family small lives with the family, not in the tests.
    """

    #: a 2-layer BERT folder with MiniLM's tokenizer (a sentence encoder: dense, PE-Rank's passage encoder)
    encoder_dir: Path
    #: the folder of tiny checkpoints in the published layouts (``tests/fixtures/peers``: ``bge-reranker-tiny``, ...)
    peers_dir: Path
    #: a tiny PE-Rank model (2-layer Llama over SmolLM2's tokenizer plus the tiny encoder), shared: do not change it
    pe_rank_model: Any

    def language_model(self) -> Any:
        """A fresh :class:`perank.backends.lm.LanguageModel` handle over the tiny Llama."""
        ...


#: a reranker's tiny configuration: constructor options, given the test suite's tiny models
TinyOptions = Callable[[TinyFixtures], Mapping[str, Any]]


@dataclass(frozen=True)
class RerankerEntry:
    """One reranker of a family: its own name (the class's ``name``), its aliases, its class and tiny options."""

    name: str
    target: Target
    aliases: tuple[str, ...] = ()
    #: the contract test's configuration (None: the contract test fails, naming this reranker)
    tiny: TinyOptions | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class RunnerEntry:
    """One training runner of a family: ``src/train.py --family NAME`` (the class's ``family``), its aliases and
    its class (a :class:`perank.training.runner.TrainingRunner`)."""

    name: str
    target: Target
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Family:
    """A family's manifest: its name and what it offers (see the module docstring)."""

    name: str
    rerankers: tuple[RerankerEntry, ...] = ()
    runners: tuple[RunnerEntry, ...] = ()

    def __post_init__(self) -> None:
        if not self.rerankers and not self.runners:
            raise ValueError(f"family {self.name!r} declares neither a reranker nor a training runner")


def load_target(target: Target) -> type:
    """The class a manifest names: imported from ``"package.module:Class"`` (or given as is)."""
    if isinstance(target, type):
        return target
    module_name, sep, qualname = target.partition(":")
    if not sep or not module_name or not qualname:
        raise ValueError(f"manifest target {target!r}: expected 'package.module:Class'")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"manifest target {target!r}: {module_name} has no {qualname}")
    if not isinstance(obj, type):
        raise ValueError(f"manifest target {target!r} is not a class")
    return obj
