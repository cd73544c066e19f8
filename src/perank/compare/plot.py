"""The quality-against-cost plot of a comparison: the headline measure (nDCG@10) against the median seconds per
query on a log scale, one point per system, with the Pareto front (the systems no other beats on both) drawn as
the best quality reachable within a time budget. matplotlib (Agg), as the benchmarks plot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from perank.compare.comparison import Comparison
from perank.io import atomic_write


def pareto_front(points: Sequence[tuple[str, float, float]]) -> list[str]:
    """The names of the (name, seconds, quality) points that no other point beats on both (at most as slow and
    strictly better, or faster and as good), from the fastest; equal points are all kept."""
    front: list[str] = []
    best = float("-inf")
    last: tuple[float, float] | None = None
    for name, seconds, quality in sorted(points, key=lambda p: (p[1], -p[2])):
        if quality > best or (seconds, quality) == last:
            front.append(name)
            best, last = quality, (seconds, quality)
    return front


#: where a point's label goes (offset in points, alignment), by how many labelled points crowd it: above right,
#: below right, above left, below left, then further out
_LABEL_SPOTS = ((5, 4, "left"), (5, -11, "left"), (-5, 4, "right"), (-5, -11, "right"), (5, 14, "left"))


def plot(c: Comparison, path: Path, title: str) -> list[str]:
    """Write the PNG; returns the systems left out because their run recorded no positive latency. A label whose
    point lies close to an already labelled one (within 0.6 decades and 6% of the quality range) goes to the next
    free spot around its point (:data:`_LABEL_SPOTS`), so that near-equal systems stay readable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = c.headline.key
    points = [(r.name, r.cost.median_s, r.means[key]) for r in c.rows if r.cost.median_s and r.cost.median_s > 0]
    left_out = [r.name for r in c.rows if r.name not in {p[0] for p in points}]
    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(8, 5))
    span = (max(p[2] for p in points) - min(p[2] for p in points) if points else 0.0) or 1.0
    placed: list[tuple[float, float]] = []
    for name, x, y in sorted(points, key=lambda p: -p[2]):
        on_front = name in front
        ax.scatter(x, y, s=55 if on_front else 35, color="tab:red" if on_front else "tab:blue", zorder=3)
        crowd = sum(abs(math.log10(x / px)) < 0.6 and abs(y - py) < 0.06 * span for px, py in placed)
        dx, dy, align = _LABEL_SPOTS[crowd % len(_LABEL_SPOTS)]
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(dx, dy), ha=align, fontsize=7)
        placed.append((x, y))
    if len(front) > 1:
        xy = {name: (x, y) for name, x, y in points}
        xs, ys = zip(*(xy[name] for name in front))
        ax.step(xs, ys, where="post", color="tab:red", alpha=0.6, linestyle="--", label="Pareto front")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xscale("log")
    ax.margins(x=0.25, y=0.15)
    ax.set_xlabel("median seconds per query (log scale)")
    ax.set_ylabel(f"{c.headline.label} ({len(c.qids)} queries)")
    suffix = f"\nnot shown (no latency recorded): {', '.join(left_out)}" if left_out else ""
    ax.set_title(title + suffix, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)
    return left_out
