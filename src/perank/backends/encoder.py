"""The frozen passage encoder: text -> one L2-normalised vector per passage.

Any Hugging Face encoder works (``AutoModel``), including sentence-transformers folders (their root holds
the transformer). Pooling is ``mean``, ``cls`` or ``last_token``. A single ``max_length`` is used in training
and inference (the original used 128 for training and 512 at inference; one setting avoids the mismatch).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn

from perank.backends.resolve import resolve_model

POOLINGS = ("mean", "cls", "last_token")


def pool(hidden: Tensor, mask: Tensor, pooling: str) -> Tensor:
    """Pool token states ``[B, T, d]`` with attention mask ``[B, T]`` into ``[B, d]``."""
    if pooling == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last_token":
        # works for right padding; left padding puts the last token at -1
        last = mask.sum(-1) - 1
        if bool((mask[:, -1] == 1).all()):
            return hidden[:, -1]
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")


def default_pooling(name_or_path: str) -> str:
    """The pooling a sentence-transformers folder declares (``1_Pooling/config.json``), else mean."""
    cfg = Path(name_or_path) / "1_Pooling" / "config.json"
    if cfg.exists():
        mode = json.loads(cfg.read_text())
        if mode.get("pooling_mode_cls_token"):
            return "cls"
        if mode.get("pooling_mode_lasttoken"):
            return "last_token"
    return "mean"


class PassageEncoder(nn.Module):
    """A frozen text encoder with pooling and L2 normalisation.

    ``encode`` also reports how many texts were truncated, so callers can count over-long passages.
    """

    def __init__(
        self,
        name_or_path: str,
        pooling: str = "mean",
        max_length: int = 256,
        trust_remote_code: bool = False,
        model: nn.Module | None = None,
        tokenizer: object | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
        from transformers import AutoModel, AutoTokenizer

        self.name_or_path = name_or_path
        self.pooling = pooling
        self.max_length = max_length
        local = resolve_model(name_or_path)
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(local, trust_remote_code=trust_remote_code)
        self.model = model or AutoModel.from_pretrained(local, trust_remote_code=trust_remote_code)
        self.model.eval()
        self.requires_grad_(False)
        #: optional :class:`perank.backends.embedding_cache.EmbeddingCache` used by :meth:`encode`
        self.cache: object | None = None

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def tokenize(self, texts: list[str]) -> dict[str, Tensor]:
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")

    def count_truncated(self, texts: list[str]) -> int:
        """How many texts exceed ``max_length`` tokens (and are therefore truncated): one token over the limit
        tells, so a long text's every token is never kept."""
        lengths = self.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=self.max_length + 1)
        return sum(len(ids) > self.max_length for ids in lengths["input_ids"])

    @torch.no_grad()
    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        out = self.model(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device))
        emb = pool(out.last_hidden_state, attention_mask.to(self.device), self.pooling)
        return torch.nn.functional.normalize(emb.float(), p=2, dim=-1)

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 64, cache: object | None = None) -> Tensor:
        """Embed texts in batches (sorted by length to waste less padding); returns ``[n, d]`` float32.

        With an :class:`perank.backends.embedding_cache.EmbeddingCache` (the ``cache`` argument, else the ``cache``
        attribute, None by default) only texts not cached yet are encoded, and their vectors are stored.
        """
        cache = cache if cache is not None else getattr(self, "cache", None)
        if cache is not None:
            from perank.backends.embedding_cache import encode_cached

            return encode_cached(self, texts, cache, batch_size=batch_size)
        return self.encode_uncached(texts, batch_size=batch_size)

    @torch.no_grad()
    def encode_uncached(self, texts: list[str], batch_size: int = 64) -> Tensor:
        """:meth:`encode` without any cache."""
        if not texts:
            return torch.zeros(0, self.dim)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty(len(texts), self.dim)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            batch = self.tokenize([texts[i] for i in idx])
            out[idx] = self(batch["input_ids"], batch["attention_mask"]).cpu()
        return out
