"""ListConRanker's architecture, module for module as the published model (the mteb peer's ``Encoder``).

1. The query and every passage are embedded separately by a BERT-type encoder (``AutoModel``): the last
   hidden states mean-pooled over the attention mask (published: 512 tokens, 1024-d).
2. ``linear_in_embedding``: ``Linear(d_embed -> d_list)`` (published 1024 -> 1792).
3. ``list_transformer`` over the rows ``[q, p1, ..., pn]`` of each list: a query-tag embedding is added
   (tag 1 on the query row, 0 elsewhere) and LayerNorm applied, then post-norm ``nn.TransformerEncoderLayer``s
   (GELU, heads = the embedder's head count, feed-forward 2048 published, dropout 0.1). ListAttention: the
   query row attends to itself only, passages attend to the whole list.
4. The head: ``Lin(2d -> 1)[ReLU(Lin[q; p]); ReLU(Lin[q'; p'])]`` with ``'`` = after the list transformer; the
   score is its sigmoid (:meth:`ListConRankerModel.scores` applies it in fp32, see there).

The list transformer has no position embedding, so a list's scores do not depend on the passages' order.
Attribute names are the published ones, so ``list_transformer.pt`` and ``linear_in_embedding.pt`` load as
state dicts (see :mod:`perank.families.listconranker.checkpoint` for the folder layout).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from perank.types import InputError

CONFIG_NAME = "listconranker_config.json"
LINEAR_IN_NAME = "linear_in_embedding.pt"
LIST_TRANSFORMER_NAME = "list_transformer.pt"
#: keys of the template layer that ``nn.TransformerEncoder`` deep-copies: saved in the published file, never run
TEMPLATE_PREFIX = "list_transformer_layer."

# the published sizes relative to its 1024-d embedder, used to scale the head to another embedder
_LIST_DIM_RATIO = 1792 / 1024
_FFN_RATIO = 2048 / 1024


@dataclass(frozen=True)
class ListConRankerConfig:
    """The sizes of the projection and list transformer (``listconranker_config.json`` in perank's folders).

    The published folder has no such file: :func:`perank.families.listconranker.checkpoint.read_config`
    reads the sizes from its weight shapes instead, and the head count from the embedder's config, as the
    published code does.
    """

    embedder_dim: int
    list_dim: int
    num_heads: int
    num_layers: int = 2
    ffn_dim: int = 2048
    max_length: int = 512  # tokens per text (query or passage), the reranker's default

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{f.name} must be a positive integer, got {value!r}")
        if self.list_dim % self.num_heads:
            raise ValueError(f"list_dim {self.list_dim} is not a multiple of num_heads {self.num_heads}")

    @classmethod
    def scaled(
        cls, embedder_dim: int, num_heads: int, max_length: int = 512, num_layers: int = 2
    ) -> ListConRankerConfig:
        """The published sizes scaled to an embedder of ``embedder_dim``: ``list_dim`` = 1.75 d rounded up to a
        multiple of the head count, ``ffn_dim`` = 2 d (all-MiniLM-L6-v2: 384 -> 672, 12 heads, ffn 768)."""
        list_dim = math.ceil(embedder_dim * _LIST_DIM_RATIO / num_heads) * num_heads
        return cls(embedder_dim, list_dim, num_heads, num_layers, round(embedder_dim * _FFN_RATIO), max_length)

    def save(self, folder: str | Path) -> None:
        path = Path(folder) / CONFIG_NAME
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> ListConRankerConfig:
        """Read a config file; a malformed one is an :class:`InputError` naming it."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from exc
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            extra = sorted(set(data) - known) if isinstance(data, dict) else []
            raise InputError(f"{path}: expected an object with keys {sorted(known)}; unknown: {extra}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: {exc}") from exc


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean of the token states over the attention mask, in the states' dtype (as the published code)."""
    mask = attention_mask.unsqueeze(-1).expand(hidden.size()).to(dtype=hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1)


class QueryEmbedding(nn.Module):
    """Adds a learned tag (1 for the query row, 0 for passages and padding), then LayerNorm."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query_embedding = nn.Embedding(2, dim)
        self.layerNorm = nn.LayerNorm(dim)  # noqa: N815 - the published parameter name

    def forward(self, x: Tensor, tags: Tensor) -> Tensor:
        return self.layerNorm(x + self.query_embedding(tags))


class ListTransformer(nn.Module):
    """The list transformer and the scoring head (the published ``ListTransformer``).

    The published module also registers the template layer it hands to ``nn.TransformerEncoder``
    (``list_transformer_layer``), which is deep-copied and never run; it is not registered here, so it neither
    trains nor sits in memory (:mod:`.checkpoint` drops it on load and writes a copy of layer 0 on save).
    """

    def __init__(self, dim: int, num_heads: int, num_layers: int, ffn_dim: int) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            dim, num_heads, dim_feedforward=ffn_dim, batch_first=True, activation=F.gelu, norm_first=False
        )
        self.list_transformer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.relu = nn.ReLU()
        self.query_embedding = QueryEmbedding(dim)
        self.linear_score3 = nn.Linear(dim * 2, dim)
        self.linear_score2 = nn.Linear(dim * 2, dim)
        self.linear_score1 = nn.Linear(dim * 2, 1)

    def forward(self, features: Tensor, lengths: list[int]) -> Tensor:
        """Logits of every passage: ``features`` holds the rows of each list ``[q, p1..pn]`` one list after
        another, ``lengths[i]`` = n_i + 1; the result has ``sum(n_i)`` entries in the same order."""
        rows = nn.utils.rnn.pad_sequence(list(features.split(lengths)), batch_first=True)  # [B, L, d]
        batch, length = rows.shape[0], rows.shape[1]
        device = rows.device
        tags = torch.zeros(batch, length, dtype=torch.long, device=device)
        tags[:, 0] = 1
        padding = torch.arange(length, device=device)[None, :] >= torch.tensor(lengths, device=device)[:, None]
        query_mask = torch.zeros(length, length, dtype=torch.bool, device=device)
        query_mask[0, 1:] = True  # ListAttention: the query row does not attend to the passages
        after = self.list_transformer(self.query_embedding(rows, tags), mask=query_mask, src_key_padding_mask=padding)
        passages = ~padding[:, 1:]
        n = length - 1
        before_pairs = torch.cat([rows[:, :1].expand(-1, n, -1), rows[:, 1:]], dim=-1)[passages]
        after_pairs = torch.cat([after[:, :1].expand(-1, n, -1), after[:, 1:]], dim=-1)[passages]
        head = torch.cat(
            [self.relu(self.linear_score2(before_pairs)), self.relu(self.linear_score3(after_pairs))], dim=-1
        )
        return self.linear_score1(head).squeeze(-1)


class ListConRankerModel(nn.Module):
    """Embedder + projection + list transformer; :meth:`embed` and :meth:`logits` are the two halves."""

    def __init__(
        self, embedder: nn.Module, tokenizer: Any, config: ListConRankerConfig, name_or_path: str = ""
    ) -> None:
        super().__init__()
        hidden = int(embedder.config.hidden_size)
        if hidden != config.embedder_dim:
            raise InputError(f"{name_or_path}: the embedder is {hidden}-d but {CONFIG_NAME} says {config.embedder_dim}")
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.config = config
        self.name_or_path = name_or_path
        self.linear_in_embedding = nn.Linear(hidden, config.list_dim)
        self.list_transformer = ListTransformer(config.list_dim, config.num_heads, config.num_layers, config.ffn_dim)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def tokenize(self, texts: list[str], max_length: int) -> dict[str, Tensor]:
        """One text per row, padded to the longest and cut to ``max_length`` tokens (special tokens included)."""
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return dict(batch)

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        """Mean-pooled embedder states ``[N, d_embed]`` of a tokenized batch (in the model's dtype)."""
        inputs = {
            k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")
        }
        hidden = self.embedder(**inputs, return_dict=True).last_hidden_state
        return mean_pool(hidden, inputs["attention_mask"])

    def logits(self, pooled: Tensor, lengths: list[int]) -> Tensor:
        """Passage logits from the pooled rows of each list ``[q, p1..pn]`` (see :meth:`ListTransformer.forward`)."""
        return self.list_transformer(self.linear_in_embedding(pooled.to(self.dtype)), lengths)

    def scores(self, pooled: Tensor, lengths: list[int]) -> Tensor:
        """Passage scores in (0, 1): the sigmoid of :meth:`logits`, taken in fp32.

        The published code takes the sigmoid in fp16, which maps nearby logits to one value (fp16 has ~3
        decimal digits near 1), and ties then decide which passages iterative inference drops; the logits
        themselves are computed in the model's dtype as published. In fp32 both are the same.
        """
        return torch.sigmoid(self.logits(pooled, lengths).float())

    def head_state_dicts(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """``(linear_in_embedding.pt, list_transformer.pt)`` contents in the published layout (fp32, CPU): the
        template layer's keys are filled with a copy of layer 0, so the published loader (strict) reads them."""
        linear_in = {k: v.detach().float().cpu().clone() for k, v in self.linear_in_embedding.state_dict().items()}
        lt = {k: v.detach().float().cpu().clone() for k, v in self.list_transformer.state_dict().items()}
        first = "list_transformer.layers.0."
        template = {TEMPLATE_PREFIX + k[len(first) :]: v.clone() for k, v in lt.items() if k.startswith(first)}
        return linear_in, {**template, **lt}

    def save_pretrained(self, folder: str | Path) -> None:
        """Write a folder :func:`perank.families.listconranker.checkpoint.load_model` reads: the embedder and
        tokenizer (``save_pretrained``), the two head files in the published layout, and the config."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.embedder.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        linear_in, lt = self.head_state_dicts()
        torch.save(linear_in, folder / LINEAR_IN_NAME)
        torch.save(lt, folder / LIST_TRANSFORMER_NAME)
        self.config.save(folder)
