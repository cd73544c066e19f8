"""Turn a Trainer checkpoint of a LoRA run into the small folder that ships in ``checkpoints/``.

A ``checkpoint-N`` folder holds what resuming needs (optimizer state, RNG, scheduler, a second copy of the
weights: ~90 MB for the small model). The shipped folder keeps only what loading needs: the LoRA adapter
(cast to ``--dtype``, bf16 by default, which halves it; it is loaded into the fp32 model), the projector, the
tokenizer with the PE-Rank tokens, ``perank_config.json`` and the loss log (``trainer_state.json``).

    perank export-checkpoint work_train/s2/checkpoint-1800 checkpoints/pe-rank-smollm2-minilm
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from perank.cli.errors import run_guarded

KEEP = (
    "adapter_config.json",
    "chat_template.jinja",
    "perank_config.json",
    "projector.safetensors",
    "relevance.safetensors",  # only in models trained with --relevance_feature cosine
    "tokenizer.json",
    "tokenizer_config.json",
    "trainer_state.json",
)


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="perank export-checkpoint", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("checkpoint", type=Path, help="a Trainer checkpoint folder of a LoRA run")
    ap.add_argument("output", type=Path)
    ap.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default="bfloat16")
    args = ap.parse_args(argv)

    import torch
    from safetensors.torch import load_file, save_file

    src = args.checkpoint
    needed = ("adapter_model.safetensors", "perank_config.json", "projector.safetensors")
    missing = [n for n in needed if not (src / n).exists()]
    if missing:
        raise SystemExit(f"{src}: not a LoRA PE-Rank checkpoint (missing {', '.join(missing)})")
    args.output.mkdir(parents=True, exist_ok=True)
    for stale in args.output.iterdir():
        if stale.is_file():
            stale.unlink()
    for name in KEEP:
        if (src / name).exists():
            shutil.copy2(src / name, args.output / name)
    # the adapter names its base by the alias in perank_config.json, not by this machine's cache path
    llm_name = json.loads((src / "perank_config.json").read_text()).get("llm_name")
    if llm_name and (args.output / "adapter_config.json").exists():
        adapter_config = json.loads((args.output / "adapter_config.json").read_text())
        adapter_config["base_model_name_or_path"] = llm_name
        (args.output / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2) + "\n")
    dtype = getattr(torch, args.dtype)
    adapter = {k: v.to(dtype).contiguous() for k, v in load_file(str(src / "adapter_model.safetensors")).items()}
    save_file(adapter, str(args.output / "adapter_model.safetensors"), metadata={"format": "pt"})
    size = sum(p.stat().st_size for p in args.output.iterdir()) / 2**20
    print(f"exported {src} -> {args.output} ({size:.1f} MiB, adapter in {args.dtype})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``perank export-checkpoint``: :func:`run`, an unreadable file as one line and exit status 2."""
    return run_guarded(lambda: run(argv))
