"""The configurations the benchmark times, and the shapes of its random-weight (synthetic) models.

Plain data, no torch: the command line validates ``--only``/``--skip`` against it before anything heavy loads.
"""

from __future__ import annotations

from typing import Any

#: every configuration the benchmark knows, in run order: name -> (reranker, decode mode, batched?)
CONFIGS: dict[str, tuple[str, str | None, bool]] = {
    "pe-rank": ("pe-rank", "greedy", False),
    "pe-rank-whole-prompts": ("pe-rank", "greedy", False),
    "pe-rank-single-pass": ("pe-rank", "single-pass", False),
    "pe-rank-batched": ("pe-rank", "greedy", True),
    "pe-rank-single-pass-batched": ("pe-rank", "single-pass", True),
    "listwise-text-embedding": ("listwise-text-embedding", "greedy", False),
    "listwise-text": ("listwise-text", None, False),
    "pe-rank-cached": ("pe-rank", "greedy", False),
    "pe-rank-eager": ("pe-rank", "greedy", False),
    "pe-rank-batched-eager": ("pe-rank", "greedy", True),
}
#: the eager-engine twins of the default (``decode_engine=auto``: CUDA graphs on CUDA) greedy configurations;
#: on CPU ``auto`` is eager already, so they run only when asked for (``--only``, ``tests/gpu/gpu_check.sh``)
EAGER_TWINS = ("pe-rank-eager", "pe-rank-batched-eager")
#: what runs without ``--only``: everything but the cached configuration, which needs ``--embedding-cache``,
#: and the eager twins
DEFAULT_CONFIGS = [c for c in CONFIGS if c != "pe-rank-cached" and c not in EAGER_TWINS]
#: constructor keywords a configuration adds to its reranker's
CONFIG_KWARGS: dict[str, dict[str, Any]] = {
    "pe-rank-whole-prompts": {"reuse_prefix": False},
    **{name: {"decode_engine": "eager"} for name in EAGER_TWINS},
}
#: rerankers that put passage text in the prompt: slow, so they time ``--text-queries`` queries
TEXT_RERANKERS = ("listwise-text", "listwise-text-embedding")

#: shapes of the synthetic models: (LLM MistralConfig kwargs, encoder BertConfig kwargs)
SYNTHETIC: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "mistral-7b": (
        dict(
            hidden_size=4096,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            intermediate_size=14336,
            vocab_size=32000,
            max_position_embeddings=32768,
            rope_theta=1e6,
            sliding_window=None,
        ),
        {},  # BertConfig defaults: BERT-base, 768-d, 12 layers
    ),
    "tiny": (
        dict(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=128,
            vocab_size=32000,
            max_position_embeddings=8192,
            sliding_window=None,
        ),
        dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    ),
}


def select_configs(only: str | None, skip: str, embedding_cache: str | None) -> list[str]:
    """The configurations to run, in order, from ``--only``/``--skip``/``--embedding-cache``.

    Raises ``SystemExit`` (the command line's error) on an unknown name, or on ``pe-rank-cached`` without a
    cache file, before any model loads.
    """
    names = [n for n in (only.split(",") if only else DEFAULT_CONFIGS) if n]
    if embedding_cache and "pe-rank-cached" not in names and not only:
        names.append("pe-rank-cached")
    skipped = {n for n in skip.split(",") if n}
    unknown = sorted((set(names) | skipped) - set(CONFIGS))
    if unknown:
        raise SystemExit(f"unknown configuration(s) {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
    names = [n for n in names if n not in skipped]
    if "pe-rank-cached" in names and not embedding_cache:
        raise SystemExit("pe-rank-cached needs --embedding-cache PATH")
    return names
