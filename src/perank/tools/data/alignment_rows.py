"""Build stage-1 (alignment) data: passages -> wiki2m-style JSONL rows.

Each row asks the LLM to reconstruct a passage from its single embedding token::

    {"messages": [{"role": "user", "content": INSTRUCTION},
                  {"role": "assistant", "content": passage}],
     "extra_texts": [passage]}

``INSTRUCTION`` is fixed (below) and contains one ``<PLACEHOLDER>``. Inputs, by ``--format`` (``auto``
guesses from the content): a BEIR corpus JSONL (``_id``, ``title``, ``text``; rendered
``"Title: {title} Content: {text}"`` as BEIR passages are at evaluation), retrieval-results JSONL/JSON
(every hit's ``content``), or plain text (one passage a line). Passages are de-duplicated, optionally cut to
``--max-words`` words (the embedding is of the cut text, so target and embedding agree), shuffled with
``--seed`` and capped at ``--max-passages`` per input. Several inputs may be given.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from pathlib import Path

from perank.cli.errors import run_guarded
from perank.families.pe_rank.prompts import PLACEHOLDER
from perank.io import atomic_write, read_retrieval_results

INSTRUCTION = f"Please reconstruct the passage represented by [{PLACEHOLDER}]."


def _open(path: Path):  # noqa: ANN202 - text handle
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def detect_format(path: Path) -> str:
    """``beir``, ``results`` or ``text`` from the first non-empty line."""
    with _open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            if line.startswith("["):
                return "results"
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    return "text"
                if "hits" in obj:
                    return "results"
                if "text" in obj:
                    return "beir"
            return "text"
    return "text"


def read_passages(path: Path, fmt: str) -> list[str]:
    """All passage texts of one input, in file order."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "results":
        return [c.text for r in read_retrieval_results(path) for c in r.candidates]
    out: list[str] = []
    with _open(path) as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            if fmt == "text":
                out.append(line.strip())
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{lineno}: malformed JSON ({exc.msg})") from exc
            title, text = str(obj.get("title") or "").strip(), str(obj.get("text") or "").strip()
            out.append(f"Title: {title} Content: {text}" if title else text)
    return out


def row(passage: str) -> dict:
    return {
        "messages": [{"role": "user", "content": INSTRUCTION}, {"role": "assistant", "content": passage}],
        "extra_texts": [passage],
    }


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="perank build-alignment-data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("inputs", nargs="+", type=Path, help="corpus / retrieval results / text files")
    ap.add_argument("--output", "-o", type=Path, required=True)
    ap.add_argument("--format", choices=("auto", "beir", "results", "text"), default="auto")
    ap.add_argument("--max-passages", type=int, default=0, help="per input, 0 = all")
    ap.add_argument("--max-words", type=int, default=0, help="cut passages to this many words, 0 = keep")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    seen: set[str] = set()
    rows = []
    for path in args.inputs:
        passages = []
        for p in read_passages(path, args.format):
            if args.max_words:
                p = " ".join(p.split()[: args.max_words])
            if p and p not in seen:
                seen.add(p)
                passages.append(p)
        rng.shuffle(passages)
        if args.max_passages:
            passages = passages[: args.max_passages]
        rows += [row(p) for p in passages]
        print(f"{path}: {len(passages)} passages", file=sys.stderr)
    rng.shuffle(rows)
    with atomic_write(args.output) as handle:
        for r in rows:
            handle.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {args.output}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``perank build-alignment-data``: :func:`run`, bad input or an unreadable file as one line and exit status 2."""
    return run_guarded(lambda: run(argv))
