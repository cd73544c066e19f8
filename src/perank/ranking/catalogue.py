"""Every family perank knows, found one way for rerankers and training runners alike.

Two sources, read the same way (a :class:`~perank.ranking.family.Family` each):

- the built-in families: the packages :data:`FAMILIES_PACKAGE` lists in its ``PACKAGES``, each with a
  ``manifest`` module holding ``FAMILY``;
- installed packages: every entry point of the group :data:`ENTRY_POINT_GROUP` whose value is a ``Family``, so a
  third-party package adds a family without editing perank::

      [project.entry-points."perank.families"]
      my-family = "my_package.manifest:FAMILY"

Only manifests are imported to build the catalogue; a reranker's or a runner's module is imported when that one is
asked for (:func:`load_target`). The catalogue is built once per process (:func:`catalogue`) and is the one
registry: :mod:`perank.ranking.registry` looks rerankers up in it, :mod:`perank.training.runner` runners. This
core module names the families' package as a string and imports no family module itself.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points

from perank.ranking.family import Family, RerankerEntry, RunnerEntry

logger = logging.getLogger(__name__)

#: the package of the built-in families; its ``PACKAGES`` names each family's subpackage
FAMILIES_PACKAGE = "perank.families"
#: the module of a built-in family package that holds its ``FAMILY``
MANIFEST_MODULE = "manifest"
#: the entry-point group through which installed packages add families
ENTRY_POINT_GROUP = "perank.families"


@dataclass(frozen=True)
class Catalogue:
    """Every known family, and each reranker and runner name (aliases included) with its family and entry."""

    families: tuple[Family, ...]
    rerankers: Mapping[str, tuple[Family, RerankerEntry]]
    runners: Mapping[str, tuple[Family, RunnerEntry]]

    @classmethod
    def of(cls, families: Iterable[Family]) -> Catalogue:
        """The catalogue of ``families``; a name two entries claim is an error naming both families."""
        families = tuple(families)
        rerankers: dict[str, tuple[Family, RerankerEntry]] = {}
        runners: dict[str, tuple[Family, RunnerEntry]] = {}
        seen: set[str] = set()
        for family in families:
            if family.name in seen:
                raise ValueError(f"two families are named {family.name!r}")
            seen.add(family.name)
            for entry in family.rerankers:
                _claim(rerankers, "reranker", family, entry)
            for entry in family.runners:
                _claim(runners, "training runner", family, entry)
        return cls(families, rerankers, runners)


def _claim(table: dict, kind: str, family: Family, entry: RerankerEntry | RunnerEntry) -> None:
    for name in entry.names:
        if name in table:
            raise ValueError(f"{kind} name {name!r} is claimed by families {table[name][0].name!r} and {family.name!r}")
        table[name] = (family, entry)


def built_in_families() -> list[Family]:
    """The manifests of the packages ``perank.families.PACKAGES`` lists, in that order."""
    package = importlib.import_module(FAMILIES_PACKAGE)
    out = []
    for name in package.PACKAGES:
        manifest = importlib.import_module(f"{FAMILIES_PACKAGE}.{name}.{MANIFEST_MODULE}")
        family = getattr(manifest, "FAMILY", None)
        if not isinstance(family, Family):
            raise TypeError(f"{manifest.__name__}.FAMILY is not a perank.ranking.family.Family")
        out.append(family)
    return out


def installed_families() -> list[Family]:
    """The families installed packages announce under :data:`ENTRY_POINT_GROUP`.

    One that fails to load, or is not a ``Family``, is skipped with a warning naming it: a broken plugin must not
    stop every command (its names are then simply unknown)."""
    out = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            family = point.load()
        except Exception as exc:  # any error of third-party code: reported, not fatal
            logger.warning("perank family %r (%s) failed to load, skipped: %s", point.name, point.value, exc)
            continue
        if not isinstance(family, Family):
            logger.warning("perank family %r (%s) is not a perank Family, skipped", point.name, point.value)
            continue
        out.append(family)
    return out


@functools.cache
def catalogue() -> Catalogue:
    """The one registry: built-in then installed families, discovered on first use."""
    return Catalogue.of([*built_in_families(), *installed_families()])
