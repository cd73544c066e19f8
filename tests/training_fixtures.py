"""Tiny random-weight models for the training tests (built from configs, no download, a few MB)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perank.prompts import PromptSpec, messages


def build_tiny_models(root: Path) -> tuple[str, str]:
    """A 2-layer Llama with the SmolLM2 tokenizer and a 2-layer BERT with the MiniLM tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

    from perank.modeling.resolve import resolve_model

    llm_dir, enc_dir = root / "tiny-llm", root / "tiny-bert"
    if (llm_dir / "config.json").exists() and (enc_dir / "config.json").exists():
        return str(llm_dir), str(enc_dir)
    torch.manual_seed(0)
    try:
        tok = AutoTokenizer.from_pretrained(resolve_model("smollm2"))
        enc_tok = AutoTokenizer.from_pretrained(resolve_model("all-minilm-l6-v2"))
    except (OSError, FileNotFoundError) as exc:  # pragma: no cover - packaged models missing
        pytest.skip(f"packaged tokenizers unavailable: {exc}")
    llm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            tie_word_embeddings=True,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
        )
    )
    llm.save_pretrained(llm_dir)
    tok.save_pretrained(llm_dir)
    enc = BertModel(
        BertConfig(
            vocab_size=enc_tok.vocab_size,
            hidden_size=24,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=512,
        )
    )
    enc.save_pretrained(enc_dir)
    enc_tok.save_pretrained(enc_dir)
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
