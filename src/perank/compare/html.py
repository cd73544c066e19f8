"""The comparison as one self-contained HTML page: the tables of :mod:`.report` and the plot embedded as a PNG
data URI, so the page can be mailed or attached without its folder. Every text is escaped."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from perank.compare.comparison import Comparison
from perank.compare.report import Table, legend, main_table, order_table, per_query_table

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.text { text-align: left; max-width: 32em; }
th { background: #f3f3f3; }
img { max-width: 100%; }
"""


def _table(table: Table, text_columns: frozenset[int] = frozenset()) -> str:
    header, rows = table
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="text">{escape(x)}</td>' if i in text_columns else f"<td>{escape(x)}</td>"
            for i, x in enumerate(r)
        )
        + "</tr>\n"
        for r in rows
    )
    return f"<table>\n<tr>{head}</tr>\n{body}</table>\n"


def page(c: Comparison, title: str, png: Path | None, per_query: bool) -> str:
    """The HTML text: title, main table, legend, the plot (when ``png`` exists), order sensitivity, per query."""
    parts = [f"<h1>{escape(title)}</h1>", _table(main_table(c))]
    parts.append("<ul>" + "".join(f"<li>{escape(x)}</li>" for x in legend(c)) + "</ul>")
    if png is not None and png.exists():
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        alt = f"{c.headline.label} against median seconds per query"
        parts.append(f'<h2>Quality and cost</h2>\n<img alt="{escape(alt)}" src="data:image/png;base64,{data}">')
    if c.order:
        parts += ["<h2>Order sensitivity</h2>", _table(order_table(c))]
    if per_query:
        parts += [
            f"<h2>Per query ({escape(c.headline.label)}), largest |Δ| first</h2>",
            _table(per_query_table(c), frozenset({1})),
        ]
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{escape(title)}</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
