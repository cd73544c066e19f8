"""``python -m perank.cli.assemble --llm smollm2 --encoder all-minilm-l6-v2 --output DIR``: an untrained PE-Rank.

Joins a base LLM and a frozen encoder with a freshly initialised (seeded) projector and saves the result in
perank's checkpoint format. Only the projector and the config are written (``save_llm=False``): the LLM is
named in the config and loaded from its own source, so the folder is a few megabytes. Useful to exercise the
whole pipeline before any training, and as the starting point of stage-1 alignment.
"""

from __future__ import annotations

import argparse
import logging
import sys

from perank.backends.encoder import POOLINGS
from perank.families.pe_rank.prompts import QUERY_EMBEDDING_POSITIONS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m perank.cli.assemble", description=__doc__.splitlines()[0])
    parser.add_argument("--llm", required=True, help="causal LM: alias (smollm2), hub id or folder")
    parser.add_argument("--encoder", required=True, help="passage encoder: alias (all-minilm-l6-v2), hub id or folder")
    parser.add_argument("--output", required=True, help="folder to write the checkpoint to")
    parser.add_argument("--projector-type", default="mlp2x_gelu", help="linear or mlp{N}x_gelu (default mlp2x_gelu)")
    parser.add_argument("--encoder-pooling", choices=POOLINGS, default=None, help="default: the encoder's own")
    parser.add_argument("--encoder-max-length", type=int, default=256, help="encoder max tokens per passage")
    parser.add_argument("--query-embedding", action="store_true", help="also inject the query's embedding as a token")
    parser.add_argument(
        "--query-embedding-position", choices=QUERY_EMBEDDING_POSITIONS, default="prompt", help="where that token goes"
    )
    parser.add_argument(
        "--no-query-text", action="store_true", help="prompts without the query's text (needs --query-embedding)"
    )
    parser.add_argument("--seed", type=int, default=0, help="projector initialisation seed")
    parser.add_argument("--trust-remote-code", action="store_true", help="needed by some encoders (jina)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from perank.families.pe_rank.model import PERankModel

    try:
        model = PERankModel.build(
            args.llm,
            args.encoder,
            encoder_pooling=args.encoder_pooling,
            encoder_max_length=args.encoder_max_length,
            projector_type=args.projector_type,
            query_embedding=args.query_embedding,
            query_embedding_position=args.query_embedding_position,
            query_text=not args.no_query_text,
            trust_remote_code=args.trust_remote_code,
            device="cpu",
            seed=args.seed,
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model.save_pretrained(args.output, save_llm=False)
    print(f"saved an untrained PE-Rank ({args.llm} + {args.encoder}, {args.projector_type}) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
