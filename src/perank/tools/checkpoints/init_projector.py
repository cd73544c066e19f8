"""A cheap stand-in for stage-1 alignment: regress the projector onto the LLM's own token embeddings.

Stage 1 proper (``--model_type causal_lm``) teaches the projector, through the LLM, to map a passage
embedding to a token the LLM reads as that passage. On this CPU it costs an LLM forward and backward per
passage. This command gets a usable start for a fraction of that: for each text it takes the IDF-weighted
mean of the LLM's *input* token embeddings of the text (a bag-of-words "token" for the passage), taken
around the mean token embedding and rescaled to a typical token's distance from it, and fits the projector
to map the frozen encoder's embedding of the text onto it (MSE, no LLM forward at all). Projected passages
then start as distinct, token-like vectors in the LLM's embedding space; from a random MLP they were nearly
parallel (cosine ~0.95 after a few hundred stage-2 steps), so the LLM could hardly tell them apart and
stage 2 learned slowly.

The output is a ``projector.bin`` with the original's key names, the file ``--pretrain_mlp_adapter`` reads.

    perank init-projector --data work_train/train_mix.jsonl --embeddings work_train/emb_minilm256.pt \\
        --output work_train/s1_regress/projector.bin
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import Counter
from pathlib import Path

import torch

from perank.backends.embedding_cache import text_key
from perank.backends.resolve import resolve_model
from perank.cli.errors import run_guarded
from perank.families.pe_rank.projector import build_projector


def read_texts(paths: list[Path]) -> list[str]:
    """Every distinct query and passage text of stage-2 rows."""
    texts: dict[str, None] = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    texts.setdefault(row["query"], None)
                    for t in row["extra_texts"]:
                        texts.setdefault(t, None)
                except (json.JSONDecodeError, KeyError) as exc:
                    raise SystemExit(f"{path}:{lineno}: not a stage-2 row ({exc})") from exc
    return list(texts)


def pairwise(vectors: torch.Tensor, n: int = 512) -> float:
    """Mean pairwise cosine of (up to) n of the vectors: how alike they look to the LLM."""
    sample = torch.nn.functional.normalize(vectors[torch.randperm(len(vectors))[:n]], dim=-1)
    return float((sample @ sample.T).mean())


def input_embedding_table(llm: torch.nn.Module, chunk: int = 65536) -> torch.Tensor:
    """Every token's input vector as the LLM sees it: the embedding module applied to each id, not its raw
    weight, because some models (Gemma) scale the lookup by sqrt(hidden size) inside that module."""
    module = llm.get_input_embeddings()
    vocab = module.weight.shape[0]
    with torch.no_grad():
        return torch.cat([module(torch.arange(i, min(i + chunk, vocab))).float() for i in range(0, vocab, chunk)])


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="perank init-projector", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, nargs="+", required=True, help="stage-2 rows whose texts to use")
    ap.add_argument("--embeddings", type=Path, required=True, help="frozen-encoder cache (perank build-rank-data)")
    ap.add_argument("--llm", default="smollm2")
    ap.add_argument("--projector-type", default="mlp2x_gelu")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    llm_path = Path(resolve_model(args.llm))
    tokenizer = AutoTokenizer.from_pretrained(llm_path)
    table = input_embedding_table(AutoModelForCausalLM.from_pretrained(llm_path, dtype=torch.float32))
    token_norm = float(table.norm(dim=-1).mean())
    # Averaging many token embeddings converges on their common mean direction (every text would look
    # alike), so the average is taken over deviations from the mean token and rescaled to a typical token's
    # deviation: the target sits where a real token would, in the direction of the text's words.
    mean_token = table.mean(0)
    deviation_norm = float((table - mean_token).norm(dim=-1).mean())

    cache = torch.load(args.embeddings, weights_only=True)
    texts = [t for t in read_texts(args.data) if text_key(t) in cache]
    if not texts:
        raise SystemExit(f"none of the texts in {args.data} has an embedding in {args.embeddings}")
    ids = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=args.max_tokens)["input_ids"]
    df = Counter(t for row in ids for t in set(row))
    idf = {t: math.log(len(texts) / c) for t, c in df.items()}
    targets = torch.empty(len(texts), table.shape[1])
    for i, row in enumerate(ids):
        if not row:
            targets[i] = table.mean(0)
            continue
        w = torch.tensor([idf[t] for t in row]) + 1e-3
        v = (w.unsqueeze(1) * (table[row] - mean_token)).sum(0)
        targets[i] = mean_token + v / v.norm().clamp_min(1e-6) * deviation_norm
    inputs = torch.stack([cache[text_key(t)].float() for t in texts])

    projector = build_projector(args.projector_type, inputs.shape[1], table.shape[1])
    opt = torch.optim.AdamW(projector.parameters(), lr=args.lr, weight_decay=0.0)
    order = list(range(len(texts)))
    rng = random.Random(args.seed)
    for epoch in range(args.epochs):
        rng.shuffle(order)
        total = 0.0
        for start in range(0, len(order), 256):
            idx = order[start : start + 256]
            loss = torch.nn.functional.mse_loss(projector(inputs[idx]), targets[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        if epoch in (0, args.epochs - 1) or epoch % 10 == 9:
            print(f"epoch {epoch + 1}: mse {total / len(order):.4f}", file=sys.stderr)
    with torch.no_grad():
        out = projector(inputs)
        cos = torch.nn.functional.cosine_similarity(out, targets).mean()
        spread = pairwise(out)
    print(
        f"{len(texts)} texts; cosine to target {float(cos):.3f}; mean pairwise cosine of outputs {spread:.3f}; "
        f"token norm {token_norm:.2f}; targets' mean pairwise cosine {pairwise(targets):.3f}",
        file=sys.stderr,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    state = {f"model.projector.{k}": v.detach().contiguous() for k, v in projector.state_dict().items()}
    torch.save(state, args.output)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``perank init-projector``: :func:`run`, bad input or an unreadable file as one line and exit status 2."""
    return run_guarded(lambda: run(argv))
