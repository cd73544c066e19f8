"""Teacher-ranked lists for the families that train on ``perank build-rank-data`` rows as lists (``e2rank``,
``jina-listwise``): reading and validating the rows, refusing held-out queries, drawing slates.

A row gives a query, a window of n candidates in first-stage order and the teacher's ranking of them
(:mod:`perank.training.rank_rows`; its PE-Rank prompts are not read here). Every row is validated up front with
file:line errors, and the whole file is refused when a query is held out (DL19's qids and topic texts always,
and those of ``--forbid_qrels`` / ``--forbid_topics``), as the data builders refuse them.

Per item a slate is scored: every candidate, or with ``slate_size`` the teacher's top one and a random draw of
the others, redrawn each epoch and seeded by (seed, epoch, item) so that a resumed run replays the same slates.
A slate keeps window (first-stage) order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from perank.training.holdout import (
    dl19_qrels_path,
    dl19_topics_path,
    held_out_texts,
    refuse_held_out_query_texts,
    refuse_judged_queries,
)
from perank.training.jsonl import RowErrors, read_jsonl
from perank.training.rank_rows import check_ranking
from perank.types import InputError, Query


@dataclass(frozen=True)
class RankedList:
    """One row: the query, its window (first-stage order) and the teacher's ranking (``ranking[k]`` = the window
    index of the candidate at rank k)."""

    qid: str
    query: str
    window: list[str]
    ranking: list[int]


def read_ranked_lists(path: str | Path) -> list[RankedList]:
    """Every row of ``path``, validated (all bad rows reported at once, each with its file:line)."""
    lists: list[RankedList] = []
    errors = RowErrors(path)
    for lineno, obj in read_jsonl(path):
        try:
            if not isinstance(obj, dict):
                raise ValueError("expected a JSON object")
            qid, query = obj.get("qid"), obj.get("query")
            if not isinstance(qid, str | int) or isinstance(qid, bool) or not str(qid).strip():
                raise ValueError("'qid' must be a non-empty string or integer (held-out queries are refused by it)")
            if not isinstance(query, str) or not query.strip():
                raise ValueError("'query' must be a non-empty string")
            ranking, window = check_ranking(obj)
            if len(window) < 2:
                raise ValueError("a list of one candidate has no pair to rank")
            lists.append(RankedList(str(qid), query, window, ranking))
        except ValueError as exc:
            errors.add(lineno, str(exc))
    errors.raise_if_any()
    return lists


def refuse_held_out(
    lists: Sequence[RankedList], source: str | Path, qrels: Sequence[str], topics: Sequence[str]
) -> None:
    """InputError when a row's qid is judged in DL19's qrels or ``qrels``, or its query is a topic of DL19 or of
    ``topics`` (:mod:`perank.training.holdout`, the builders' own checks)."""
    queries = [Query(item.qid, item.query) for item in lists]
    dl19_qrels, dl19_topics = dl19_qrels_path(), dl19_topics_path()
    for path in ([dl19_qrels] if dl19_qrels else []) + list(qrels):
        if not Path(path).is_file():
            raise InputError(f"--forbid_qrels {path}: file not found")
        refuse_judged_queries(queries, path)
    for path in topics:
        if not Path(path).is_file():
            raise InputError(f"--forbid_topics {path}: file not found")
    texts = held_out_texts(([dl19_topics] if dl19_topics else []) + list(topics))
    refuse_held_out_query_texts(queries, texts, source)


class RankedListDataset(Dataset):
    """Item i -> ``{"query", "window", "slate", "positions"}``: ``slate`` the window indices scored (in window
    order), ``positions`` their teacher ranks (0 = first)."""

    def __init__(self, lists: list[RankedList], slate_size: int | None = None, seed: int = 42) -> None:
        if not lists:
            raise InputError("no training rows")
        if slate_size is not None and slate_size < 2:
            raise InputError(f"--slate_size {slate_size}: a slate needs at least two candidates to rank")
        self.lists = lists
        self.slate_size = slate_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the next epoch's slates (called by the Trainer's data loader)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lists)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.lists[i]
        position = {index: rank for rank, index in enumerate(item.ranking)}
        n = len(item.window)
        if self.slate_size is None or self.slate_size >= n:
            slate = list(range(n))
        else:
            rng = random.Random(f"{self.seed}:{self.epoch}:{i}")  # a string seed: stable across processes
            top = item.ranking[0]
            others = rng.sample([j for j in range(n) if j != top], self.slate_size - 1)
            slate = sorted([top, *others])
        return {
            "query": item.query,
            "window": item.window,
            "slate": slate,
            "positions": [position[j] for j in slate],
        }
