"""One configuration per family and setting: the registry name, what the setting is, and its options.

Plain data, no torch. Options name what a full run uses by default (the shipped small checkpoints, SmolLM2 for
the prompt-based LLM families, the families' own hub defaults for the large released models); ``--set
NAME.key=value`` changes any of them (the smoke test points every family at its tiny fixture that way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FamilyConfig:
    """A benchmark row: ``reranker`` (registry name) built with ``options``; ``setting`` says what it is."""

    reranker: str
    setting: str
    options: dict[str, Any] = field(default_factory=dict)


#: every configuration, in run order (cheap first-stage and encoder families, then the LLM ones)
FAMILY_CONFIGS: dict[str, FamilyConfig] = {
    "identity": FamilyConfig("identity", "first-stage order (BM25), no model"),
    "dense": FamilyConfig("dense", "bi-encoder cosine, all-MiniLM-L6-v2", {"model_path": "all-minilm-l6-v2"}),
    "cross-encoder": FamilyConfig("cross-encoder", "cross-encoder (BGE-reranker style), shipped small model"),
    "colbert": FamilyConfig("colbert", "late interaction (BGE-M3 ColBERT style), shipped small model"),
    "listconranker": FamilyConfig("listconranker", "ListConRanker, list-aware encoder"),
    "e2rank": FamilyConfig(
        "e2rank", "E2Rank listwise pseudo-query (top 20 in the prompt), all-MiniLM-L6-v2, zero-shot", {"k": 20}
    ),
    "jina-listwise": FamilyConfig(
        "jina-listwise", "jina-reranker-v3 listwise blocks (Qwen3-0.6B, hub default), zero-shot"
    ),
    "pe-rank": FamilyConfig("pe-rank", "PE-Rank greedy, one token per passage, shipped checkpoint"),
    "pe-rank-single-pass": FamilyConfig(
        "pe-rank", "PE-Rank single pass (sort by the first step)", {"decode_mode": "single-pass"}
    ),
    "listwise-text-embedding": FamilyConfig("listwise-text-embedding", "PE-Rank with passage text after each token"),
    "listwise-text": FamilyConfig(
        "listwise-text", "RankGPT-style listwise generation, SmolLM2", {"model_path": "smollm2"}
    ),
    "llm-pointwise": FamilyConfig("llm-pointwise", "pointwise yes/no prompt, SmolLM2", {"method": "yes_no"}),
    "llm-pointwise-qlm": FamilyConfig("llm-pointwise", "pointwise query likelihood, SmolLM2", {"method": "qlm"}),
    "llm-pairwise": FamilyConfig("llm-pairwise", "pairwise prompts, heap sort, SmolLM2", {"method": "heapsort"}),
    "llm-pairwise-bubblesort": FamilyConfig(
        "llm-pairwise", "pairwise prompts, bubble sort, SmolLM2", {"method": "bubblesort"}
    ),
    "llm-pairwise-allpair": FamilyConfig("llm-pairwise", "pairwise prompts, all pairs, SmolLM2", {"method": "allpair"}),
    "llm-setwise": FamilyConfig("llm-setwise", "setwise prompts, heap sort, SmolLM2", {"method": "heapsort"}),
    "llm-setwise-bubblesort": FamilyConfig(
        "llm-setwise", "setwise prompts, bubble sort, SmolLM2", {"method": "bubblesort"}
    ),
    "llm-yes-no": FamilyConfig("llm-yes-no", "LLM yes-logit reranker (bge-reranker-v2-gemma)"),
    "llm-yes-no-smollm2": FamilyConfig(
        "llm-yes-no", "bge-reranker-v2-gemma's input on SmolLM2, zero-shot", {"model_path": "smollm2"}
    ),
    "llm-yes-no-trained": FamilyConfig(
        "llm-yes-no",
        "SmolLM2 + LoRA fine-tuned here on the 'Yes' logit",
        {"model_path": "checkpoints/llm-yes-no-smollm2"},
    ),
    "llm-layerwise": FamilyConfig("llm-layerwise", "layerwise LLM reranker (bge-reranker-v2-minicpm-layerwise)"),
    "dear": FamilyConfig("dear", "DeAR listwise (DeAR-8B LoRA)"),
    "dear-smollm2": FamilyConfig(
        "dear", "DeAR's card prompt on SmolLM2, zero-shot", {"model_path": "smollm2", "prompt": "card"}
    ),
    "dear-trained": FamilyConfig(
        "dear",
        "SmolLM2 + LoRA fine-tuned here on teacher rankings (listwise-sft)",
        {"model_path": "checkpoints/listwise-sft-smollm2"},
    ),
}


def select_configs(only: str | None, skip: str) -> list[str]:
    """The configurations to run, in order; an unknown name is the command line's error (``SystemExit``)."""
    names = [n for n in (only.split(",") if only else FAMILY_CONFIGS) if n]
    skipped = {n for n in skip.split(",") if n}
    unknown = sorted((set(names) | skipped) - set(FAMILY_CONFIGS))
    if unknown:
        raise SystemExit(f"unknown configuration(s) {', '.join(unknown)}; known: {', '.join(FAMILY_CONFIGS)}")
    return [n for n in names if n not in skipped]


def parse_sets(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``NAME.key=value`` (value read as JSON when it parses, else as text) to ``{NAME: {key: value}}``.

    ``*.key=value`` sets the option on every configuration whose reranker accepts it.
    """
    import json

    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        target, sep, raw = pair.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot or not key or (name != "*" and name not in FAMILY_CONFIGS):
            raise SystemExit(
                f"--set {pair!r}: expected NAME.key=value with NAME one of {', '.join(FAMILY_CONFIGS)} or *"
            )
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out.setdefault(name, {})[key] = value
    return out
