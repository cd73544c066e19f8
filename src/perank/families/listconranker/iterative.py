"""ListConRanker's iterative inference, exactly as published (the mteb peer's ``iterative_inference``).

Long lists are ranked in rounds so that the best passages are finally compared among themselves: while more
than :data:`FINAL_SIZE` passages remain, score them all and drop the lowest ``max(ceil(0.2 n), 10)``, plus
every passage tied with the last one dropped; a dropped passage keeps ``score + round`` (rounds count from
0). The last ``FINAL_SIZE`` or fewer get ``score + R`` in one more call, R being the number of drop rounds.
So a passage that survived longer always ranks above one dropped earlier (scores are in (0, 1)), and
n = 100 takes 7 calls (drops 20, 16, 13, 11, 10, 10, then 20 are scored together).

:class:`IterativeState` is the schedule alone, with no model in it, so that a reranker can advance many
queries' rounds in one batched call and the schedule can be tested on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

FINAL_SIZE = 20
DROP_FRACTION = 0.2
MIN_DROP = 10


def drop_count(n: int) -> int:
    """How many of ``n`` (> FINAL_SIZE) passages a round drops before ties are added."""
    return max(math.ceil(n * DROP_FRACTION), MIN_DROP)


@dataclass
class IterativeState:
    """One query's passages through the rounds: :attr:`pending` to score next, :meth:`update` with the scores.

    ``pending`` lists passage indices in the order the published code passes them: input order in round 0,
    then the survivors in increasing score order (the list transformer does not depend on the order, but the
    floating-point sums do, slightly). ``final`` holds each passage's final score once :attr:`done`.
    """

    n: int
    pending: list[int] = field(default_factory=list)
    final: list[float] = field(default_factory=list)
    round: int = 0
    calls: int = 0
    drops: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pending = list(range(self.n))
        self.final = [0.0] * self.n

    @property
    def done(self) -> bool:
        return not self.pending

    def update(self, scores: list[float]) -> None:
        """Take the scores of :attr:`pending` (same order) and advance one round."""
        if len(scores) != len(self.pending):
            raise ValueError(f"{len(scores)} scores for {len(self.pending)} pending passages")
        self.calls += 1
        if len(self.pending) <= FINAL_SIZE:
            for idx, score in zip(self.pending, scores):
                self.final[idx] = score + self.round
            self.pending = []
            return
        order = np.argsort(scores).tolist()  # numpy's default sort, as published (ties in its order)
        k = drop_count(len(scores))
        # ties with the last dropped passage go too; the published loop then runs off the end when every
        # remaining passage ties (IndexError): here they are all dropped, so a tie is never split
        while k < len(order) and scores[order[k - 1]] == scores[order[k]]:
            k += 1
        for j in order[:k]:
            self.final[self.pending[j]] = scores[j] + self.round
        self.drops.append(k)
        self.pending = [self.pending[j] for j in order[k:]]
        self.round += 1


def schedule(n: int) -> list[int]:
    """The number of passages each call scores for a list of ``n`` passages without ties (REFERENCE check 4)."""
    state = IterativeState(n)
    sizes = []
    while not state.done:
        sizes.append(len(state.pending))
        state.update([float(i) for i in range(len(state.pending))])
    return sizes
