"""Tiny random-weight models for the training tests (built from configs, no download, a few MB)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perank.families.pe_rank.prompts import PromptSpec, messages


def build_tiny_models(root: Path) -> tuple[str, str]:
    """A 2-layer Llama with the SmolLM2 tokenizer and a 2-layer BERT with the MiniLM tokenizer (conftest's)."""
    from conftest import write_tiny_encoder, write_tiny_llm

    llm_dir, enc_dir = root / "tiny-llm", root / "tiny-bert"
    if not (llm_dir / "config.json").exists():
        write_tiny_llm(llm_dir)
    if not (enc_dir / "config.json").exists():
        write_tiny_encoder(enc_dir)
    return str(llm_dir), str(enc_dir)


PASSAGES = [f"passage number {i} about topic {i % 3} with some words" for i in range(12)]


def rank_row(n: int = 4, query_embedding: bool = False, start: int = 0) -> dict:
    texts = PASSAGES[start : start + n]
    ranking = list(reversed(range(n)))
    q = f"query about topic {start % 3}"
    return {
        "qid": str(start),
        "query": q,
        "messages_w_content": messages(PromptSpec("text-embedding", query_embedding), q, texts, True),
        "messages_wo_content": messages(PromptSpec("embedding", query_embedding), q, texts, True),
        "ranking": ranking,
        "extra_texts": texts + [texts[i] for i in ranking],
    }


def align_row(i: int = 0) -> dict:
    p = PASSAGES[i]
    return {
        "messages": [
            {"role": "user", "content": "Please reconstruct the passage represented by [<PLACEHOLDER>]."},
            {"role": "assistant", "content": p},
        ],
        "extra_texts": [p],
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return build_tiny_models(tmp_path_factory.mktemp("tiny"))
