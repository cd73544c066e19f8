"""How far a PE-Rank checkpoint's first decoding step follows the dense teacher: Spearman per window.

The diagnosis in ``checkpoints/README.md`` traced most of the small model's gap to its first step: the scores
``h . v_i`` it gives the passages of a window before any passage is output. This command measures that step
alone. For each query it takes the first window (the top ``--window`` candidates in the file's order), computes
the first step's logits (the single-pass decode), and the Spearman correlation of those logits with the frozen
encoder's query-passage cosines (the dense teacher's scores). No judgments are read.

    perank first-step-agreement --model-path checkpoints/pe-rank-smollm2-minilm \\
        --retrieval-results data/msmarco-passage/retrieve_results_dl19.json

Prints the mean and median over queries and writes them, with the per-query values, as JSON (``--output``).
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
from tqdm import tqdm

from perank.cli.errors import run_guarded
from perank.families.pe_rank.checkpoint import load_pe_rank
from perank.families.pe_rank.decoding import decode_listwise, left_pad
from perank.families.pe_rank.model import query_cosines
from perank.families.pe_rank.prompts import window_prompt
from perank.io import atomic_write, read_retrieval_results


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rho of two score vectors (no ties expected: float scores)."""
    ra = torch.argsort(torch.argsort(a)).double()
    rb = torch.argsort(torch.argsort(b)).double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def first_step_logits(model, query: str, passages: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits [n], teacher cosines [n])`` for one window."""
    (vectors,), (query_vector,) = model.embed_candidates([passages], [query])
    prompt = window_prompt(model.tokenizer, model.prompt_spec, query, passages)
    ids = model.tokenizer([prompt], add_special_tokens=False)["input_ids"]
    pad_id = model.tokenizer.pad_token_id or 0
    input_ids, attention_mask = left_pad(ids, pad_id)
    injected = vectors if query_vector is None else torch.cat([vectors, query_vector])
    (out,) = decode_listwise(model, input_ids, attention_mask, [injected], [vectors], mode="single-pass")
    logits = torch.empty(len(passages), dtype=torch.float64)
    logits[torch.tensor(out.order)] = torch.tensor(out.step_logits, dtype=torch.float64)
    raw = model.encoder.encode(passages + [query])  # again: embed_candidates keeps only the projections
    cosines = query_cosines(raw[:-1], raw[-1]).double()
    return logits, cosines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="perank first-step-agreement", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model-path", required=True, help="a perank checkpoint folder")
    ap.add_argument("--retrieval-results", required=True, help="candidates (JSON list or JSONL)")
    ap.add_argument("--window", type=int, default=20, help="passages of the first window (default 20)")
    ap.add_argument("--max-queries", type=int, default=0, help="only the first N queries (0 = all)")
    ap.add_argument("--output", help="write the summary and per-query values here (JSON)")
    args = ap.parse_args(argv)

    def command() -> int:
        model = load_pe_rank(args.model_path, device="cpu", dtype=torch.float32).eval()
        requests = read_retrieval_results(args.retrieval_results)
        if args.max_queries:
            requests = requests[: args.max_queries]
        per_query: dict[str, float] = {}
        with torch.no_grad():
            for request in tqdm(requests, desc="first-step agreement", unit="q"):
                passages = [c.text for c in request.candidates[: args.window]]
                if len(passages) < 2:
                    continue
                logits, cosines = first_step_logits(model, request.query.text, passages)
                per_query[request.query.qid] = spearman(logits, cosines)
        values = list(per_query.values())
        summary = {
            "model_path": args.model_path,
            "retrieval_results": args.retrieval_results,
            "window": args.window,
            "queries": len(values),
            "spearman_mean": statistics.fmean(values) if values else None,
            "spearman_median": statistics.median(values) if values else None,
        }
        print(json.dumps(summary))
        if args.output:
            with atomic_write(args.output) as handle:
                handle.write(json.dumps({**summary, "per_query": per_query}, indent=1) + "\n")
        return 0

    return run_guarded(command)
