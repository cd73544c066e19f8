"""FlagEmbedding's reranker/embedder training data: query groups of positives and negatives, and their sampling.

One JSON object per line::

    {"query": str, "pos": [str, ...], "neg": [str, ...], "pos_scores": [float, ...], "neg_scores": [float, ...]}

(the scores are optional: teacher scores for distillation, one per passage). Every family trained on query
groups (cross-encoder, ColBERT, ListConRanker) reads it here, so a group means the same thing everywhere and
each file is validated once, up front, with every problem named by file and line: a bad row must never be
trained on silently or surface hours into a run.

A training example is one group as FlagEmbedding samples it: one positive, then ``group_size - 1`` negatives
(without replacement when the row has enough, otherwise the negatives repeated and sampled, exactly as
``AbsRerankerTrainDataset`` does), with the teacher scores aligned to the passages. Sampling is seeded by
(seed, item, epoch), not by a shared generator, so an item is the same whatever the worker or the order it is
asked in, and a resumed run sees the groups the interrupted one would have seen.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from perank.training.jsonl import RowErrors, read_jsonl
from perank.types import InputError


@dataclass(frozen=True)
class PairGroup:
    """One query with its positive and negative passages (and optional teacher scores, aligned with them)."""

    query: str
    pos: list[str]
    neg: list[str]
    pos_scores: list[float] | None
    neg_scores: list[float] | None
    where: str  # "file:line", for error messages


def _texts(obj: dict[str, Any], key: str) -> list[str]:
    value = obj.get(key)
    if value is None and key == "neg":
        return []
    if not isinstance(value, list):
        raise ValueError(f"'{key}' must be a list of strings")
    for i, text in enumerate(value):
        if not isinstance(text, str):
            raise ValueError(f"'{key}'[{i}] is not a string")
        if not text.strip():
            raise ValueError(f"'{key}'[{i}] is an empty passage")
    return list(value)


def _scores(obj: dict[str, Any], key: str, n: int) -> list[float] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError(f"'{key}' must be a list of numbers")
    if len(value) != n:
        raise ValueError(f"'{key}' has {len(value)} score(s) for {n} passage(s)")
    out: list[float] = []
    for i, score in enumerate(value):
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise ValueError(f"'{key}'[{i}] is not a number")
        if not math.isfinite(score):
            raise ValueError(f"'{key}'[{i}] is not finite ({score})")
        out.append(float(score))
    return out


def _group(obj: Any, where: str) -> PairGroup:
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    query = obj.get("query")
    if query is None:
        raise ValueError("missing 'query'")
    if not isinstance(query, str):
        raise ValueError("'query' must be a string")
    if not query.strip():
        raise ValueError("'query' is empty")
    pos = _texts(obj, "pos")
    if not pos:
        raise ValueError("a group with no positive ('pos' is empty)")
    neg = _texts(obj, "neg")
    pos_scores = _scores(obj, "pos_scores", len(pos))
    neg_scores = _scores(obj, "neg_scores", len(neg))
    if (pos_scores is None) != (neg_scores is None):
        raise ValueError("teacher scores need both 'pos_scores' and 'neg_scores' (or neither)")
    return PairGroup(query, pos, neg, pos_scores, neg_scores, where)


def read_pair_groups(path: str | Path) -> list[PairGroup]:
    """Every group of a FlagEmbedding JSONL file, each row validated before any is returned.

    Raises :class:`~perank.types.InputError` listing the bad rows as ``file:line: problem`` (up to 20).
    Rows must agree on teacher scores (all or none), since a batch mixes rows and distillation needs them all.
    """
    groups: list[PairGroup] = []
    errors = RowErrors(path)
    with_scores: tuple[int, bool] | None = None
    for lineno, obj in read_jsonl(path):
        try:
            group = _group(obj, f"{path}:{lineno}")
            has = group.pos_scores is not None
            if with_scores is None:
                with_scores = (lineno, has)
            elif with_scores[1] != has:
                state = "missing" if with_scores[1] else "present"
                raise ValueError(
                    f"teacher scores {state} here, unlike line {with_scores[0]} (all rows have them or none)"
                )
            groups.append(group)
        except ValueError as exc:
            errors.add(lineno, str(exc))
    errors.raise_if_any()
    return groups


def negative_indices(group: PairGroup, need: int, rng: random.Random, what: str) -> list[int]:
    """``need`` indices into ``group.neg``: without replacement when there are enough negatives, otherwise from
    the negatives repeated ``ceil(need / len(neg))`` times (FlagEmbedding's way of filling a group)."""
    if not need:
        return []
    if not group.neg:
        raise InputError(f"{group.where}: no negatives to fill {what} (give 'neg' passages)")
    pool = list(range(len(group.neg)))
    if len(pool) < need:
        pool = pool * math.ceil(need / len(pool))
    return rng.sample(pool, need)


def sample_group(group: PairGroup, group_size: int, rng: random.Random) -> tuple[list[str], list[float] | None]:
    """``[one positive, group_size - 1 negatives]`` and the teacher scores aligned with them (None without).

    As FlagEmbedding: the positive is drawn uniformly; negatives are drawn without replacement when there are
    at least ``group_size - 1``, otherwise from the negatives repeated ``ceil((group_size-1)/len(neg))`` times
    (so each appears at most that often).
    """
    if group_size < 1:
        raise InputError(f"group_size {group_size}: must be at least 1")
    k = rng.randrange(len(group.pos))
    passages = [group.pos[k]]
    idx = negative_indices(group, group_size - 1, rng, f"a group of {group_size}")
    passages += [group.neg[i] for i in idx]
    if group.pos_scores is None or group.neg_scores is None:
        return passages, None
    return passages, [group.pos_scores[k]] + [group.neg_scores[i] for i in idx]


class PairGroupDataset(Dataset):
    """Item i -> ``{"query", "passages", "teacher"}``: group i sampled by :func:`sample_group`.

    The sampling generator is seeded by (seed, i, epoch) (``set_epoch`` is called by the Trainer's data
    loader at each epoch), so an item does not depend on which worker asks or in what order, and resuming
    from a checkpoint replays the same groups.
    """

    def __init__(self, groups: list[PairGroup], group_size: int, seed: int = 42) -> None:
        if group_size < 1:
            raise InputError(f"--group_size {group_size}: must be at least 1")
        if not groups:
            raise InputError("no training groups")
        if group_size > 1:
            bad = [g.where for g in groups if not g.neg]
            if bad:
                more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
                raise InputError(f"{bad[0]}: no negatives to fill a group of {group_size}{more}")
        self.groups = groups
        self.group_size = group_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the next epoch's groups (each epoch samples other negatives, reproducibly)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.groups)

    def rng(self, i: int) -> random.Random:
        """Item i's generator in this epoch (a string seed is hashed with SHA-512: stable across processes)."""
        return random.Random(f"{self.seed}:{self.epoch}:{i}")

    def __getitem__(self, i: int) -> dict[str, Any]:
        group = self.groups[i]
        passages, teacher = sample_group(group, self.group_size, self.rng(i))
        return {"query": group.query, "passages": passages, "teacher": teacher}
