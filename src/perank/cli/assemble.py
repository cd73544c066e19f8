"""``python -m perank.cli.assemble --llm smollm2 --encoder all-minilm-l6-v2 --output DIR``: an untrained PE-Rank.

Joins a base LLM and a frozen encoder with a freshly initialised (seeded) projector and saves the result in
perank's checkpoint format. Only the projector and the config are written (``save_llm=False``): the LLM is
named in the config and loaded from its own source, so the folder is a few megabytes. Useful to exercise the
whole pipeline before any training, and as the starting point of stage-1 alignment.

The model's shape options (``--projector-type``, ``--relevance-feature``, ...) are made from
:class:`~perank.families.pe_rank.settings.PERankSettings`, the settings the training runner builds from too, so
assemble can build every shape training can (the shipped model's ``--query-embedding --relevance-feature cosine``).
"""

from __future__ import annotations

import argparse
import logging
import sys

from perank.families.pe_rank.settings import PERankSettings, add_arguments


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m perank.cli.assemble", description=__doc__.splitlines()[0])
    parser.add_argument("--llm", required=True, help="causal LM: alias (smollm2), hub id or folder")
    parser.add_argument("--encoder", required=True, help="passage encoder: alias (all-minilm-l6-v2), hub id or folder")
    parser.add_argument("--output", required=True, help="folder to write the checkpoint to")
    add_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="projector initialisation seed")
    parser.add_argument("--trust-remote-code", action="store_true", help="needed by some encoders (jina)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        model = PERankSettings.from_namespace(args).build_model(
            args.llm, args.encoder, trust_remote_code=args.trust_remote_code, device="cpu", seed=args.seed
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model.save_pretrained(args.output, save_llm=False)
    print(f"saved an untrained PE-Rank ({args.llm} + {args.encoder}, {args.projector_type}) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
