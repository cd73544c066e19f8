"""Random-weight PE-Rank models with a real model's shapes: a 7B model's speed without its weights.

Timings do not depend on weight values, so ``--synthetic mistral-7b`` measures what a trained Mistral-7B
PE-Rank would cost on the device, and ``--synthetic tiny`` runs the same code path in a test.
"""

from __future__ import annotations

from typing import Any

from perank_bench.rerank_latency.configs import SYNTHETIC


def build_synthetic(
    kind: str,
    device: str,
    dtype: Any,
    attn: str | None,
    max_length: int,
    tokenizer: str | None = None,
    encoder_tokenizer: str | None = None,
) -> Any:
    """A random-weight PE-Rank model with the shapes of ``kind``, built directly on ``device`` in ``dtype``.

    The LLM is built under a ``torch.device`` context (no 28 GB fp32 CPU copy); the tokenizer is SmolLM2's
    (vocabulary widened to cover it if needed); the encoder is a BertConfig-shaped model with MiniLM's (BERT)
    tokenizer.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BertConfig, BertModel, MistralConfig

    from perank.backends.encoder import PassageEncoder
    from perank.backends.resolve import resolve_model
    from perank.backends.runtime import default_attn_implementation
    from perank.families.pe_rank.model import PERankConfig, PERankModel, add_special_tokens

    llm_kwargs, enc_kwargs = SYNTHETIC[kind]
    llm_tokenizer = AutoTokenizer.from_pretrained(tokenizer or resolve_model("smollm2"))
    add_special_tokens(llm_tokenizer)
    llm_kwargs = dict(llm_kwargs)
    llm_kwargs["vocab_size"] = max(llm_kwargs["vocab_size"], len(llm_tokenizer))
    llm_config = MistralConfig(
        **llm_kwargs,
        bos_token_id=llm_tokenizer.bos_token_id,
        eos_token_id=llm_tokenizer.eos_token_id,
        pad_token_id=llm_tokenizer.pad_token_id,
    )
    enc_tokenizer = AutoTokenizer.from_pretrained(encoder_tokenizer or resolve_model("all-minilm-l6-v2"))
    enc_config = BertConfig(**enc_kwargs, vocab_size=max(30522, len(enc_tokenizer)))
    attn = attn or default_attn_implementation(device)
    torch.manual_seed(0)
    with torch.device(device):
        llm = AutoModelForCausalLM.from_config(llm_config, dtype=dtype, attn_implementation=attn)
        enc_model = BertModel(enc_config).to(dtype=torch.float32 if torch.device(device).type == "cpu" else dtype)
    llm.eval()
    llm.requires_grad_(False)
    llm.generation_config.pad_token_id = llm_tokenizer.pad_token_id
    encoder = PassageEncoder(
        f"synthetic-bert-{kind}", pooling="mean", max_length=max_length, model=enc_model, tokenizer=enc_tokenizer
    )
    config = PERankConfig(
        llm_name=f"synthetic-{kind}",
        encoder_name=f"synthetic-bert-{kind}",
        encoder_pooling="mean",
        encoder_max_length=max_length,
    )
    model = PERankModel(config, llm, tokenizer=llm_tokenizer, encoder=encoder)
    model.eval()
    model.requires_grad_(False)
    return model


class SyntheticModels:
    """The one synthetic model an ``--in-process`` run shares between its configurations.

    Building a 7B model takes longer than timing it, so configurations with the same model reuse it; a
    different model replaces it (only one is held, to bound memory). Owned by the driver, not global.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._model: Any = None

    def get(self, spec: dict[str, Any], dtype: Any) -> Any:
        """The model ``spec`` asks for (its ``synthetic`` kind, device, dtype, attention and max length)."""
        key = (spec["synthetic"], spec["device"], str(dtype), spec.get("attn"), spec["max_length"])
        if key != self._key:
            self._model = None  # free the previous model before building the next
            self._model = build_synthetic(
                spec["synthetic"],
                spec["device"],
                dtype,
                spec.get("attn"),
                spec["max_length"],
                tokenizer=spec.get("tokenizer"),
                encoder_tokenizer=spec.get("encoder_tokenizer"),
            )
            self._key = key
        return self._model
