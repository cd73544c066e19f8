"""Training lists for ListConRanker: one query with several positives and negatives, from query groups.

ListConRanker is trained on lists (about 20 passages per query, several of them relevant), not on
FlagEmbedding's one-positive groups, so the list is drawn here from the same rows
(:func:`perank.training.pairs.read_pair_groups`, validated up front with file:line errors): up to
``max_positives`` positives without replacement, then negatives up to ``group_size`` passages (without
replacement when the row has enough, otherwise from the negatives repeated, as FlagEmbedding fills a group).
The order inside a list does not matter to the model (no position embedding). Teacher scores, when the rows
have them, are not used: Circle Loss needs only which passages are relevant.
"""

from __future__ import annotations

import random
from typing import Any

import torch

from perank.training.pairs import PairGroup, PairGroupDataset, negative_indices
from perank.types import InputError


def sample_list(
    group: PairGroup, group_size: int, max_positives: int, rng: random.Random
) -> tuple[list[str], list[int]]:
    """``(passages, labels)``: up to ``max_positives`` positives (label 1), then negatives (label 0) up to
    ``group_size`` passages in all."""
    n_pos = min(len(group.pos), max_positives, group_size - 1)
    passages = rng.sample(group.pos, n_pos)
    need = group_size - n_pos
    passages += [group.neg[i] for i in negative_indices(group, need, rng, f"a list of {group_size}")]
    return passages, [1] * n_pos + [0] * need


class ListDataset(PairGroupDataset):
    """Item i -> ``{"query", "passages", "labels"}`` drawn from group i by :func:`sample_list`.

    Seeded by (seed, epoch, i) as :class:`perank.training.pairs.PairGroupDataset` (whose epochs and generators
    it uses), so an item does not depend on the worker or order, a resumed run replays the same lists, and each
    epoch draws other negatives.
    """

    def __init__(self, groups: list[PairGroup], group_size: int, max_positives: int, seed: int = 42) -> None:
        if group_size < 2:
            raise InputError(f"--group_size {group_size}: a list needs at least one positive and one negative")
        if not 1 <= max_positives < group_size:
            raise InputError(f"--max_positives {max_positives}: must be at least 1 and below --group_size")
        if not groups:
            raise InputError("no training groups")
        bad = [g.where for g in groups if not g.neg]
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise InputError(f"{bad[0]}: a group with no negative cannot make a list{more}")
        super().__init__(groups, group_size, seed)
        self.max_positives = max_positives

    def __getitem__(self, i: int) -> dict[str, Any]:
        group = self.groups[i]
        passages, labels = sample_list(group, self.group_size, self.max_positives, self.rng(i))
        return {"query": group.query, "passages": passages, "labels": labels}


def collate_lists(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A batch of lists: ``texts`` = each list's ``[query, p1..pn]`` one after another, ``lengths`` = n + 1 per
    list, ``targets`` = the passages' labels (1 relevant, 0 not) in the same order. Tokenisation happens in the
    loss module, which skips texts whose embedding it has cached (frozen embedder)."""
    texts: list[str] = []
    lengths: list[int] = []
    targets: list[int] = []
    for item in items:
        texts += [item["query"], *item["passages"]]
        lengths.append(1 + len(item["passages"]))
        targets += item["labels"]
    return {
        "texts": texts,
        "lengths": torch.tensor(lengths, dtype=torch.long),
        "targets": torch.tensor(targets, dtype=torch.float32),
    }
