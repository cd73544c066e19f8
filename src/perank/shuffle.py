"""Input-order permutations, for measuring how much a reranker depends on the order it reads its candidates in.

Listwise rerankers are known to be sensitive to input order. ``evaluate.py --shuffle-input reverse|SEED`` reranks
the same candidates with each query's list reversed, or permuted at random (a seeded permutation per query, so
a run is reproducible and two queries are not shuffled alike); ``perank compare`` then puts the shuffled run
beside the unshuffled one (Δ nDCG@10, Kendall τ between the two output rankings).

The shuffle is part of a run's identity: its file name carries :func:`shuffle_marker` (``+shuffle-reverse``,
``+shuffle-13``) and its metrics JSON records ``shuffle_input``, so a shuffled run never rescores an
unshuffled one. Unshuffled runs keep their names.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

from perank.types import Candidate, InputError, Request

#: the one non-random permutation: each query's candidates in reverse first-stage order
REVERSE = "reverse"

_MARKER = re.compile(r"\+shuffle-(reverse|\d+)")


def parse_shuffle(value: str | int | None) -> str | None:
    """``"reverse"`` or a non-negative integer seed (as its decimal string); ``None`` for no shuffle.

    Anything else is an :class:`InputError`, raised before a model loads.
    """
    if value is None:
        return None
    text = str(value).strip()
    if text == REVERSE:
        return REVERSE
    if text.isdigit():
        return str(int(text))
    raise InputError(f"--shuffle-input {value!r}: expected 'reverse' or a non-negative integer seed")


def shuffle_marker(how: str) -> str:
    """What a shuffled run's label ends with: ``+shuffle-reverse`` or ``+shuffle-SEED``."""
    return f"+shuffle-{how}"


def unshuffled_name(name: str) -> tuple[str, str | None]:
    """A system name without its shuffle marker, and the marker's value (``None`` when it has none):
    ``pe-rank+shuffle-reverse`` -> (``pe-rank``, ``reverse``). How ``perank compare`` pairs the two runs."""
    match = _MARKER.search(name)
    if match is None:
        return name, None
    return name[: match.start()] + name[match.end() :], match.group(1)


def permutation(n: int, how: str, qid: str) -> list[int]:
    """The input positions in their new order: reversed, or numpy's permutation seeded by (seed, CRC32 of the qid)
    so that it depends on neither the process nor the other queries of the run."""
    if how == REVERSE:
        return list(range(n))[::-1]
    import numpy as np

    rng = np.random.default_rng([int(how), zlib.crc32(qid.encode("utf-8"))])
    return [int(i) for i in rng.permutation(n)]


def shuffled(requests: Sequence[Request], how: str) -> list[Request]:
    """New requests whose candidates are permuted by :func:`permutation`; ``rank`` is renumbered to the new
    positions, so a reranker sees the permuted list as its first stage (scores travel with their passages)."""
    out = []
    for request in requests:
        order = permutation(len(request.candidates), how, request.query.qid)
        candidates = [
            Candidate(docid=c.docid, text=c.text, score=c.score, rank=rank)
            for rank, c in enumerate((request.candidates[i] for i in order), start=1)
        ]
        out.append(Request(query=request.query, candidates=candidates))
    return out
