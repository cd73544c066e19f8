"""A comparison as tables (header + rows of text, rendered as markdown here and as HTML by :mod:`.html`), as JSON,
and its per-query view as TSV. The tables are built once, so the markdown, the HTML and the printed report always
show the same numbers.
"""

from __future__ import annotations

from typing import Any

from perank.compare.comparison import Comparison, Row
from perank.compare.cost import Cost
from perank.compare.stats import TESTS

#: the mark of a measure that differs from the baseline after Holm's correction
MARK = "†"
#: a missing value (no cost recorded, no τ)
NONE = "-"

Table = tuple[list[str], list[list[str]]]


def fmt_p(p: float) -> str:
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return NONE
    return f"{s:.2f}" if s >= 0.01 else "<0.01"


def fmt_count(x: float | None, decimals: int = 0) -> str:
    return NONE if x is None else f"{x:,.{decimals}f}"


def fmt_calls(cost: Cost) -> str:
    """LLM calls per query, with the share of a window reranker's windows it returned unchanged: ``9.0 (100%
    unchanged)``."""
    calls = fmt_count(cost.llm_calls, 1)
    if cost.windows_unchanged is None or cost.llm_calls is None:
        return calls
    return f"{calls} ({100 * cost.windows_unchanged:.0f}% unchanged)"


def fmt_memory(cost: Cost) -> str:
    if cost.peak_rss_mb is None:
        return NONE
    gpu = f" (GPU {cost.peak_cuda_mb:,.0f})" if cost.peak_cuda_mb is not None else ""
    return f"{cost.peak_rss_mb:,.0f}{gpu}"


def confidence_label(c: Comparison) -> str:
    return f"{round(100 * (1 - c.alpha), 2):g}% CI"


def main_table(c: Comparison) -> Table:
    """One row per system: every measure (marked where significant), then the headline's p, Δ with its interval
    and wins/ties/losses against the baseline, then the cost per query."""
    h = c.headline
    header = ["system", *(m.label for m in c.measures)]
    header += [f"p ({h.label}, Holm)", f"Δ {h.label} [{confidence_label(c)}]", "W/T/L"]
    header += ["median s/q", "p95 s/q", "prompt tok/q", "gen tok/q", "LLM calls/q", "peak MB"]
    rows = []
    for row in c.rows:
        cells = [f"{row.name} (baseline)" if row.name == c.baseline else row.name]
        cells += [f"{row.means[m.key]:.4f}{MARK if c.significant(row, m.key) else ''}" for m in c.measures]
        cells += _against_baseline(c, row)
        cost = row.cost
        cells += [fmt_seconds(cost.median_s), fmt_seconds(cost.p95_s), fmt_count(cost.prompt_tokens)]
        cells += [fmt_count(cost.generated_tokens), fmt_calls(cost), fmt_memory(cost)]
        rows.append(cells)
    return header, rows


def _against_baseline(c: Comparison, row: Row) -> list[str]:
    paired = row.paired.get(c.headline.key)
    if paired is None:
        return [NONE, NONE, NONE]
    interval = f"{paired.mean_delta:+.4f} [{paired.ci_low:+.4f}, {paired.ci_high:+.4f}]"
    return [fmt_p(row.p_holm[c.headline.key]), interval, f"{paired.wins}/{paired.ties}/{paired.losses}"]


def _input_order(shuffle: str | None) -> str:
    if shuffle is None:
        return "given pair"
    return shuffle if not shuffle.isdigit() else f"random (seed {shuffle})"


def order_table(c: Comparison) -> Table:
    header = ["system", "shuffled run", "input order", f"Δ {c.headline.label}", "Kendall τ (mean)", "queries"]
    rows = [
        [
            o.system,
            o.shuffled,
            _input_order(o.shuffle),
            f"{o.delta:+.4f}",
            NONE if o.kendall_tau is None else f"{o.kendall_tau:.3f}",
            str(o.queries),
        ]
        for o in c.order
    ]
    return header, rows


def per_query_table(c: Comparison) -> Table:
    """Each compared query's headline value per system and each system's Δ against the baseline, the queries with
    the largest |Δ| (any system) first: where the systems win and lose."""
    key, names = c.headline.key, [r.name for r in c.rows]
    values = c.values[key]
    others = [n for n in names if n != c.baseline]
    header = ["qid", "query", *names, *(f"Δ {n}" for n in others)]

    def spread(q: str) -> float:
        return max(abs(values[n][q] - values[c.baseline][q]) for n in others)

    rows = []
    for q in sorted(c.qids, key=lambda q: (-spread(q), q)):
        cells = [q, c.topics.get(q, NONE), *(f"{values[n][q]:.4f}" for n in names)]
        cells += [f"{values[n][q] - values[c.baseline][q]:+.4f}" for n in others]
        rows.append(cells)
    return header, rows


def legend(c: Comparison) -> list[str]:
    """The lines under the table: what was compared, how, and what the marks mean."""
    m = len(c.rows) - 1
    lines = [
        f"{len(c.qids)} queries ({c.qrels}); baseline {c.baseline}; {TESTS[c.test]} per measure, Holm-Bonferroni "
        f"over the {m} system{'s' if m != 1 else ''} compared with it; {MARK}: p < {c.alpha:g} after correction.",
        f"W/T/L: queries where {c.headline.label} is higher / equal (|Δ| < 1e-9) / lower than the baseline's; "
        f"the interval is the t interval of the mean Δ, uncorrected.",
        "Cost per query from each run's accounting (- : not recorded); prompt tokens are encoder tokens for "
        "encoders; LLM calls count a listwise family's windows, with the share it returned in their input order "
        "(unchanged: a model that copies its input); peak MB is the writing process's peak RSS.",
    ]
    return lines + list(c.notes)


def _md(table: Table) -> list[str]:
    header, rows = table

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [line(header), "|" + " --- |" * len(header), *(line(r) for r in rows)]


def markdown(c: Comparison, title: str, per_query: bool = False) -> str:
    lines = [f"# {title}", "", *_md(main_table(c)), "", *(f"- {x}" for x in legend(c))]
    if c.order:
        lines += ["", "## Order sensitivity", "", *_md(order_table(c))]
        lines += [
            "",
            f"Δ {c.headline.label}: shuffled - given input order, over the compared queries; τ: Kendall's τ-b "
            "between the two output rankings of each query, averaged (1: the same ranking whatever the input order).",
        ]
    if per_query:
        lines += ["", f"## Per query ({c.headline.label}), largest |Δ| first", "", *_md(per_query_table(c))]
    return "\n".join(lines) + "\n"


def tsv(table: Table) -> str:
    header, rows = table
    clean = [[cell.replace("\t", " ").replace("\n", " ") for cell in r] for r in [header, *rows]]
    return "".join("\t".join(r) + "\n" for r in clean)


def as_json(c: Comparison, per_query: bool = False) -> dict[str, Any]:
    """Every number at full precision: per system the means, each measure's test against the baseline (raw and
    Holm-corrected p, Δ, interval, wins/ties/losses) and the cost; order sensitivity; per-query values if asked."""
    systems = []
    for row in c.rows:
        against = {
            key: {
                "p": p.p_value,
                "p_holm": row.p_holm[key],
                "significant": c.significant(row, key),
                "mean_delta": p.mean_delta,
                "ci": [p.ci_low, p.ci_high],
                "wins": p.wins,
                "ties": p.ties,
                "losses": p.losses,
            }
            for key, p in row.paired.items()
        }
        entry = {"name": row.name, "run": row.run, "means": row.means, "vs_baseline": against}
        systems.append(entry | {"cost": row.cost.as_dict()})
    out: dict[str, Any] = {
        "dataset": c.dataset,
        "qrels": c.qrels,
        "baseline": c.baseline,
        "measures": [m.key for m in c.measures],
        "test": TESTS[c.test],
        "correction": "holm",
        "alpha": c.alpha,
        "confidence": 1 - c.alpha,
        "num_queries": len(c.qids),
        "missing_queries": c.missing,
        "notes": c.notes,
        "systems": systems,
        "order_sensitivity": [o.as_dict() for o in c.order],
    }
    if per_query:
        out["per_query"] = c.values
    return out
