"""What the latency-style records share: table cells, and nDCG@10 against seconds per query (log x).

The latency benchmark and the every-family benchmark draw the same plot, so their records read alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def fmt(x: Any, digits: int = 3) -> str:
    """A table cell: ``-`` for a missing value, thousands separators for large ones."""
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def plot(entries: list[dict[str, Any]], path: Path, title: str) -> None:
    """nDCG@10 against time per query: the median latency at batch 1, the amortised wall time when batched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8))
    scored = any(e["ndcg_cut_10"] is not None for e in entries)
    for e in entries:
        # no qrels (or no pytrec_eval): every point at 0 so the latencies are still shown
        y = e["ndcg_cut_10"] if scored else 0.0
        if y is None:
            continue
        bs, n = e["config"]["batch_size"], e["config"]["n_queries"]
        if bs > 1:
            x, label, marker = 1.0 / e["queries_per_s"], f"{e['name']} (amortised, batch {bs}; {n} q)", "s"
        else:
            x, label, marker = e["median_latency_s"], f"{e['name']} ({n} q)", "o"
        ax.scatter(x, y, s=45, marker=marker, label=label)
    ax.set_xscale("log")
    ax.margins(x=0.2, y=0.15)
    ax.legend(fontsize=7, loc="best")
    ax.set_xlabel("seconds per query (log): median latency at batch 1 (o), wall time / queries when batched (s)")
    ax.set_ylabel("nDCG@10 (on the queries run)" if scored else "nDCG@10 not computed")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
