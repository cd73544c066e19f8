"""A sentence-transformers embedder with an optional persistent cache of its document vectors.

The dense bi-encoder and E2Rank read their models the same way: normalised embeddings of queries and documents,
scored by dot product. What they share lives here once: loading (a sentence-transformers folder or hub id as it
declares itself; a bare Hugging Face folder of a decoder LLM, such as the Qwen3 embedders E2Rank starts from,
gets last-token pooling, the pooling those models are trained with), the token counts the accounting reports,
and document vectors read from and written to :class:`perank.backends.embedding_cache.EmbeddingCache`. The
cache key prefix depends on the model and its length limit only, so two families that embed the same document
text with the same model share the vectors (reranking after a dense pass costs only the query encodings).

A LoRA adapter folder (``adapter_config.json`` naming its base, what ``src/train.py --family e2rank`` saves) loads
as its base embedder with the adapter merged into the weights: a few MB beside the packaged MiniLM instead of a
copy of it, and scoring at the base model's speed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from perank.backends.resolve import is_packaged_minilm, packaged_minilm
from perank.backends.runtime import resolve_device
from perank.types import InputError

#: the display name of the packaged all-MiniLM-L6-v2, used in run file names (its folder's own name is ``model``)
PACKAGED_MINILM_LABEL = "all-MiniLM-L6-v2"


def resolve_sentence_transformer(name: str | None) -> str:
    """The path or id to hand to ``SentenceTransformer`` for a user-given model name.

    ``None``, ``all-minilm-l6-v2`` and ``sentence-transformers/all-MiniLM-L6-v2`` (any case) resolve to the
    packaged folder, so the default and the hub id both work offline; anything else is returned unchanged.
    """
    if name is None or is_packaged_minilm(name):
        return str(packaged_minilm())
    return name


def sentence_model_label(name: str | None) -> str:
    """A short model name for run files and logs: the packaged MiniLM by its own name, else the last path part."""
    if name is None or is_packaged_minilm(name):
        return PACKAGED_MINILM_LABEL
    return Path(name.rstrip("/")).name or name


def _is_sentence_transformers_folder(path: str) -> bool:
    return (Path(path) / "modules.json").is_file()


#: model types of decoder LLMs whose bare folders are embedders pooled at the last token (Qwen3-Embedding, E2Rank)
DECODER_MODEL_TYPES = frozenset({"qwen2", "qwen3", "llama", "mistral", "gemma", "gemma2", "gemma3_text", "phi3"})


def _is_decoder(path: str) -> bool:
    """Whether a local Hugging Face folder holds a decoder LLM (a ``...ForCausalLM`` or a known decoder type)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    data = json.loads(config.read_text(encoding="utf-8"))
    architectures = [str(a) for a in data.get("architectures") or []]
    return any(a.endswith("ForCausalLM") for a in architectures) or data.get("model_type") in DECODER_MODEL_TYPES


def load_sentence_transformer(path: str, device: str | None = None, max_length: int | None = None) -> Any:
    """A ``SentenceTransformer`` for ``path``; a local decoder-LLM folder without sentence-transformers modules
    is assembled as transformer + last-token pooling + normalisation (what E2Rank's code does with vLLM's
    ``task="embed"``), since sentence-transformers would otherwise mean-pool it; a LoRA adapter folder is its
    base (an alias, hub id or folder) with the adapter merged."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models

    from perank.backends.lm_loading import is_adapter_folder

    if is_adapter_folder(path):
        return _load_with_adapter(Path(path), device, max_length)
    target = str(resolve_device(device)) if device else None
    if Path(path).is_dir() and not _is_sentence_transformers_folder(path) and _is_decoder(path):
        transformer = models.Transformer(path, max_seq_length=max_length)
        pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="lasttoken")
        model = SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device=target)
    else:
        model = SentenceTransformer(path, device=target)
    if max_length is not None:
        model.max_seq_length = int(max_length)
    _embed_text_as_given(model)
    return model


def _load_with_adapter(folder: Path, device: str | None, max_length: int | None) -> Any:
    """The base embedder named by ``folder``'s adapter config, the adapter merged into it (on ``device``)."""
    from perank.backends.lm_loading import adapter_base, is_adapter_folder, with_adapter
    from perank.backends.resolve import resolve_model
    from perank.backends.weights import check_weight_files

    check_weight_files(folder)
    if not any(folder.glob("adapter_model.*")):
        raise InputError(f"{folder}: has adapter_config.json but no adapter_model.safetensors (or .bin)")
    base = adapter_base(folder)
    try:
        source = resolve_model(base)
    except FileNotFoundError as exc:  # a packaged alias whose package is missing
        raise InputError(f"{folder / 'adapter_config.json'}: base model {base}: {exc}") from exc
    if is_adapter_folder(source):
        raise InputError(f"{folder / 'adapter_config.json'}: base model {base} is itself an adapter folder")
    try:
        model = load_sentence_transformer(source, device=None, max_length=max_length)
    except (OSError, ValueError) as exc:  # a deleted folder, a hub id not in the offline cache
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{folder / 'adapter_config.json'}: base model {base} cannot be loaded ({first})") from exc
    merged = with_adapter(model, folder, base=base)
    return merged.to(str(resolve_device(device))) if device else merged


def _embed_text_as_given(model: Any) -> None:
    """Embed strings as they are given. sentence-transformers 6 renders every string through the tokenizer's chat
    template when it has one (its "message" modality); an embedder that builds its own prompts (E2Rank applies the
    chat template to the pseudo-query only, never to a document) must see plain text, as vLLM's ``embed`` does."""
    for module in model:
        config = getattr(module, "modality_config", None)
        if isinstance(config, dict) and "message" in config and "text" in config:
            module.modality_config = {key: value for key, value in config.items() if key != "message"}


def pools_last_token(model: Any) -> bool:
    """Whether the model's pooling module takes the last token (decoder-LLM embedders)."""
    for module in model:
        mode = getattr(module, "pooling_mode", None)
        if mode is not None:
            return str(mode) == "lasttoken"
    return False


class SentenceEmbedder:
    """Normalised query and document embeddings of one sentence-transformers model, documents optionally cached.

    ``encode_queries`` applies the model's own query prompt (e5, bge, ...; none for MiniLM) through
    ``encode_query``; ``encode_texts`` embeds texts as given (a prompt the caller built itself);
    ``encode_documents`` goes through the cache when one is set.
    """

    def __init__(self, model: Any, batch_size: int = 64, cache: Any = None, cache_name: str = "") -> None:
        self.model = model
        self.batch_size = int(batch_size)
        self.cache = cache
        self.cache_prefix = f"sentence-embedder|{cache_name}|max_length={model.max_seq_length}"

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @property
    def max_length(self) -> int:
        return int(self.model.max_seq_length)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens the encoder actually sees per text (special tokens included, truncated to max length)."""
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        return [len(ids) for ids in encoded["input_ids"]]

    def truncated(self, texts: Sequence[str]) -> list[bool]:
        """Per text, whether the encoder cuts it (more tokens than ``max_length``, special tokens included)."""
        encoded = self.tokenizer(list(texts), truncation=False)
        return [len(ids) > self.max_length for ids in encoded["input_ids"]]

    def _encode(self, texts: Sequence[str], how: str) -> torch.Tensor:
        encode = {"query": self.model.encode_query, "document": self.model.encode_document, "text": self.model.encode}
        return encode[how](
            list(texts),
            batch_size=self.batch_size,
            convert_to_tensor=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def encode_queries(self, texts: Sequence[str]) -> torch.Tensor:
        return self._encode(texts, "query")

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        return self._encode(texts, "text")

    def encode_documents(self, texts: Sequence[str]) -> torch.Tensor:
        """``[n, d]`` document vectors: cached ones read, the rest encoded (and stored when a cache is set)."""
        if self.cache is None or not texts:
            return self._encode(texts, "document")
        cached = self.cache.get_many(self.cache_prefix, texts)
        missing = list(dict.fromkeys(t for t, v in zip(texts, cached) if v is None))
        fresh: dict[str, torch.Tensor] = {}
        if missing:
            vectors = self._encode(missing, "document")
            self.cache.put_many(self.cache_prefix, missing, vectors)
            fresh = dict(zip(missing, vectors.float().cpu()))
        rows = [torch.as_tensor(v) if v is not None else fresh[t] for t, v in zip(texts, cached)]
        return torch.stack(rows).to(self.model.device)
