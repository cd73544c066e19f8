"""One markdown table from the metrics JSON files ``evaluate.py`` writes beside each run.

Columns: the row label, nDCG@10, and per query (means unless stated): LLM calls, prompt tokens, generated
tokens, and the median seconds. ``llm_calls`` is what the prompt rankers count; listwise families count
``windows`` (one prompt each), so a run without ``llm_calls`` shows its windows; pointwise families send one
prompt per pair, so a run with neither shows its number of candidates.

    perank runs-table --label pe-rank=results/x.txt.metrics.json --label "llm-yes-no (zero-shot)=..."
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from perank.cli.errors import run_guarded
from perank.types import InputError


def row(label: str, path: Path) -> list[str]:
    """The table row of one metrics JSON."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        means = data["accounting"]["means"]
        medians = data["accounting"]["medians"]
        ndcg = data["metrics"]["ndcg_cut_10"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a metrics JSON with metrics and accounting ({exc})") from exc
    calls = means.get("llm_calls", means.get("windows"))
    if calls is None:
        calls = data.get("topk") or 0
    return [
        label,
        str(data.get("num_queries", "")),
        f"{ndcg:.4f}",
        f"{calls:.1f}",
        f"{means.get('tokens_processed', 0):,.0f}",
        f"{means.get('tokens_generated', 0):,.0f}",
        f"{medians.get('latency_s', 0):.2f}",
    ]


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="perank runs-table", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--label", action="append", required=True, help="LABEL=path/to/run.txt.metrics.json")
    ap.add_argument("-o", "--output", type=Path, help="also write the table here")
    args = ap.parse_args(argv)
    header = ["reranker", "queries", "nDCG@10", "LLM calls/q", "prompt tokens/q", "generated tokens/q", "median s/q"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for item in args.label:
        label, sep, path = item.partition("=")
        if not sep:
            raise InputError(f"--label {item!r}: expected LABEL=PATH")
        lines.append("| " + " | ".join(row(label, Path(path))) + " |")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.output:
        args.output.write_text(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``perank runs-table``: :func:`run`, bad input or an unreadable file as one line and exit status 2."""
    return run_guarded(lambda: run(argv))
