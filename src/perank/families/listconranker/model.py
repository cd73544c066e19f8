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

**Residual mode** (perank's own, opt-in: ``"residual": true`` in ``listconranker_config.json``; the published
layout never has it). A fresh published head starts from random weights and must first learn the cosine that the
dense reranker gets for free from the same embedder (the small model trained here stayed below BM25). Here the
list transformer is instead a residual branch on the embedder's own sentence embedding, which the untrained
model ranks by exactly::

    e  = normalize(mean_pool(embedder(text)))              the dense reranker's embedding (e.g. 384-d MiniLM)
    e' = normalize(e + W_out(ListTransformer(W_in e)))     for the query row and every passage row
    cosine = e'_q . e'_p        score = (1 + cosine) / 2

``W_in`` is ``linear_in_embedding`` (384 -> 672, random as in the published model), the list transformer reads the
projected rows as published (query tag, LayerNorm, ListAttention), and ``W_out`` (``linear_out_embedding``,
672 -> 384) maps its output back into the embedder's space. ``W_out`` starts at zero (weights and bias), so the
branch adds exactly 0, ``e' = e`` and the cosine is the embedder's own: step 0 ranks as the ``dense`` family.
The projection needs no cosine-preserving start because it only feeds the branch, never the score. The
published scoring head (``linear_score1..3``) does not exist in this mode. The score is the cosine mapped into
[0, 1] (a monotone map, so rankings are the cosine's), because iterative inference adds the round number to
scores and needs them in an interval of width 1; Circle Loss reads the cosine itself (:meth:`loss_scores`).
Training starts where the teacher is: the gradient reaches ``W_out`` at once, and the list transformer as soon
as ``W_out`` has moved off zero.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from perank.types import InputError

CONFIG_NAME = "listconranker_config.json"
LINEAR_IN_NAME = "linear_in_embedding.pt"
#: residual mode's ``W_out`` (list dim -> embedder dim), ``nn.Linear`` state dict ("weight", "bias")
LINEAR_OUT_NAME = "linear_out_embedding.pt"
LIST_TRANSFORMER_NAME = "list_transformer.pt"
#: keys of the template layer that ``nn.TransformerEncoder`` deep-copies: saved in the published file, never run
TEMPLATE_PREFIX = "list_transformer_layer."

# the published sizes relative to its 1024-d embedder, used to scale the head to another embedder
_LIST_DIM_RATIO = 1792 / 1024
_FFN_RATIO = 2048 / 1024
#: the config's integer sizes (the other fields are the residual option and the embedder pointer)
_SIZE_FIELDS = ("embedder_dim", "list_dim", "num_heads", "num_layers", "ffn_dim", "max_length")
#: the options' defaults, left out of a saved file so that a published-architecture folder's file stays as it was
_OPTION_DEFAULTS = {"residual": False, "embedder": None}


@dataclass(frozen=True)
class ListConRankerConfig:
    """The sizes of the projection and list transformer (``listconranker_config.json`` in perank's folders).

    The published folder has no such file: :func:`perank.families.listconranker.checkpoint.read_config`
    reads the sizes from its weight shapes instead, and the head count from the embedder's config, as the
    published code does. ``residual``: the residual architecture (module docstring). ``embedder``: where the
    embedder is (a packaged alias such as ``all-minilm-l6-v2``, a hub id or a folder) when the folder holds only
    the list transformer and its projections, because the embedder was frozen while they trained.
    """

    embedder_dim: int
    list_dim: int
    num_heads: int
    num_layers: int = 2
    ffn_dim: int = 2048
    max_length: int = 512  # tokens per text (query or passage), the reranker's default
    residual: bool = False
    embedder: str | None = None

    def __post_init__(self) -> None:
        for name in _SIZE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.list_dim % self.num_heads:
            raise ValueError(f"list_dim {self.list_dim} is not a multiple of num_heads {self.num_heads}")
        if not isinstance(self.residual, bool):
            raise ValueError(f"residual must be true or false, got {self.residual!r}")
        if self.embedder is not None and (not isinstance(self.embedder, str) or not self.embedder.strip()):
            raise ValueError(f"embedder must be a model name or folder, got {self.embedder!r}")

    @classmethod
    def scaled(
        cls, embedder_dim: int, num_heads: int, max_length: int = 512, num_layers: int = 2, residual: bool = False
    ) -> ListConRankerConfig:
        """The published sizes scaled to an embedder of ``embedder_dim``: ``list_dim`` = 1.75 d rounded up to a
        multiple of the head count, ``ffn_dim`` = 2 d (all-MiniLM-L6-v2: 384 -> 672, 12 heads, ffn 768)."""
        list_dim = math.ceil(embedder_dim * _LIST_DIM_RATIO / num_heads) * num_heads
        ffn_dim = round(embedder_dim * _FFN_RATIO)
        return cls(embedder_dim, list_dim, num_heads, num_layers, ffn_dim, max_length, residual=residual)

    def save(self, folder: str | Path) -> None:
        """Write the file; the options at their defaults are left out (a published-architecture folder's file
        is then what it was before they existed, and older readers still read it)."""
        data = {k: v for k, v in asdict(self).items() if k not in _OPTION_DEFAULTS or v != _OPTION_DEFAULTS[k]}
        path = Path(folder) / CONFIG_NAME
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

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
    ``head=False`` (residual mode) builds it without the scoring head: only :meth:`contextualise` runs.
    """

    def __init__(self, dim: int, num_heads: int, num_layers: int, ffn_dim: int, head: bool = True) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            dim, num_heads, dim_feedforward=ffn_dim, batch_first=True, activation=F.gelu, norm_first=False
        )
        self.list_transformer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.relu = nn.ReLU()
        self.query_embedding = QueryEmbedding(dim)
        self.has_head = head
        if head:  # created in the published order, so a seeded fresh head is what it always was
            self.linear_score3 = nn.Linear(dim * 2, dim)
            self.linear_score2 = nn.Linear(dim * 2, dim)
            self.linear_score1 = nn.Linear(dim * 2, 1)

    def contextualise(self, features: Tensor, lengths: list[int]) -> tuple[Tensor, Tensor, Tensor]:
        """``(rows, after, padding)``: the rows of each list ``[q, p1..pn]`` padded to ``[B, L, d]``, the same rows
        after the list transformer, and the padding mask ``[B, L]`` (``features`` holds the lists' rows one list
        after another, ``lengths[i]`` = n_i + 1)."""
        rows = nn.utils.rnn.pad_sequence(list(features.split(lengths)), batch_first=True)  # [B, L, d]
        batch, length = rows.shape[0], rows.shape[1]
        device = rows.device
        tags = torch.zeros(batch, length, dtype=torch.long, device=device)
        tags[:, 0] = 1
        padding = torch.arange(length, device=device)[None, :] >= torch.tensor(lengths, device=device)[:, None]
        query_mask = torch.zeros(length, length, dtype=torch.bool, device=device)
        query_mask[0, 1:] = True  # ListAttention: the query row does not attend to the passages
        after = self.list_transformer(self.query_embedding(rows, tags), mask=query_mask, src_key_padding_mask=padding)
        return rows, after, padding

    def forward(self, features: Tensor, lengths: list[int]) -> Tensor:
        """Logits of every passage (see :meth:`contextualise` for the inputs); the result has ``sum(n_i)``
        entries in the order of the passages in ``features``."""
        if not self.has_head:
            raise RuntimeError("this list transformer has no scoring head (residual mode): use contextualise()")
        rows, after, padding = self.contextualise(features, lengths)
        passages = ~padding[:, 1:]
        n = rows.shape[1] - 1
        before_pairs = torch.cat([rows[:, :1].expand(-1, n, -1), rows[:, 1:]], dim=-1)[passages]
        after_pairs = torch.cat([after[:, :1].expand(-1, n, -1), after[:, 1:]], dim=-1)[passages]
        head = torch.cat(
            [self.relu(self.linear_score2(before_pairs)), self.relu(self.linear_score3(after_pairs))], dim=-1
        )
        return self.linear_score1(head).squeeze(-1)


class ListConRankerModel(nn.Module):
    """Embedder + projection + list transformer; :meth:`embed` and :meth:`scores` are the two halves.

    ``embedder_source``: where the embedder came from (a name or folder), which a head-only save
    (:meth:`save_pretrained` with ``save_embedder=False``) writes into its config.
    """

    def __init__(
        self,
        embedder: nn.Module,
        tokenizer: Any,
        config: ListConRankerConfig,
        name_or_path: str = "",
        embedder_source: str | None = None,
    ) -> None:
        super().__init__()
        hidden = int(embedder.config.hidden_size)
        if hidden != config.embedder_dim:
            raise InputError(f"{name_or_path}: the embedder is {hidden}-d but {CONFIG_NAME} says {config.embedder_dim}")
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.config = config
        self.name_or_path = name_or_path
        self.embedder_source = embedder_source
        self.linear_in_embedding = nn.Linear(hidden, config.list_dim)
        self.list_transformer = ListTransformer(
            config.list_dim, config.num_heads, config.num_layers, config.ffn_dim, head=not config.residual
        )
        self.linear_out_embedding: nn.Linear | None = None
        if config.residual:  # W_out = 0: the untrained model scores exactly as the embedder's cosine
            self.linear_out_embedding = nn.Linear(config.list_dim, hidden)
            nn.init.zeros_(self.linear_out_embedding.weight)
            nn.init.zeros_(self.linear_out_embedding.bias)

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

    def refined(self, pooled: Tensor, lengths: list[int]) -> Tensor:
        """Residual mode: every row's unit vector after the list, ``normalize(e + W_out(ListTransformer(W_in e)))``
        with ``e = normalize(pooled)``, rows in the order of ``pooled`` (module docstring)."""
        if self.linear_out_embedding is None:
            raise RuntimeError("refined() is residual mode's; this model has the published head")
        e = F.normalize(pooled.to(self.dtype), dim=-1)
        _, after, padding = self.list_transformer.contextualise(self.linear_in_embedding(e), lengths)
        return F.normalize(e + self.linear_out_embedding(after[~padding]), dim=-1)

    def logits(self, pooled: Tensor, lengths: list[int]) -> Tensor:
        """Each passage's raw score from the pooled rows of each list ``[q, p1..pn]``, in passage order: the
        head's logit (published; in the model's dtype) or the cosine of the refined query and passage (residual;
        fp32, in [-1, 1])."""
        if self.linear_out_embedding is None:
            return self.list_transformer(self.linear_in_embedding(pooled.to(self.dtype)), lengths)
        refined = self.refined(pooled, lengths).float()
        counts = torch.tensor(lengths, device=refined.device)
        starts = torch.cumsum(counts, 0) - counts
        is_passage = torch.ones(refined.shape[0], dtype=torch.bool, device=refined.device)
        is_passage[starts] = False
        queries = refined[torch.repeat_interleave(starts, counts - 1)]
        return (refined[is_passage] * queries).sum(dim=-1)

    def scores(self, pooled: Tensor, lengths: list[int]) -> Tensor:
        """Passage scores (fp32): the sigmoid of :meth:`logits` in (0, 1) (published) or ``(1 + cosine) / 2`` in
        [0, 1] (residual: the cosine's order, in the interval of width 1 that iterative inference needs).

        The published code takes the sigmoid in fp16, which maps nearby logits to one value (fp16 has ~3
        decimal digits near 1), and ties then decide which passages iterative inference drops; the logits
        themselves are computed in the model's dtype as published. In fp32 both are the same.
        """
        logits = self.logits(pooled, lengths).float()
        if self.linear_out_embedding is None:
            return torch.sigmoid(logits)
        return (1.0 + logits) / 2.0

    def loss_scores(self, pooled: Tensor, lengths: list[int]) -> Tensor:
        """The similarities Circle Loss reads: the (0, 1) scores (published; what perank has always trained) or
        the cosine itself (residual), the loss's own domain (Sun et al. margin m: positives above 1 - m,
        negatives below m), which at m = 0.25 asks nothing extreme of a MiniLM cosine."""
        if self.linear_out_embedding is None:
            return self.scores(pooled, lengths)
        return self.logits(pooled, lengths)

    def head_state_dicts(self) -> dict[str, dict[str, Tensor]]:
        """The head files' contents (fp32, CPU) by file name. Published layout: ``linear_in_embedding.pt`` and
        ``list_transformer.pt`` with the template layer's keys filled with a copy of layer 0, so the published
        loader (strict) reads them. Residual mode adds ``linear_out_embedding.pt`` and writes no template copy
        (no published loader can read a model without the scoring head anyway)."""

        def cpu(module: nn.Module) -> dict[str, Tensor]:
            return {k: v.detach().float().cpu().clone() for k, v in module.state_dict().items()}

        lt = cpu(self.list_transformer)
        if self.linear_out_embedding is not None:
            return {
                LINEAR_IN_NAME: cpu(self.linear_in_embedding),
                LIST_TRANSFORMER_NAME: lt,
                LINEAR_OUT_NAME: cpu(self.linear_out_embedding),
            }
        first = "list_transformer.layers.0."
        template = {TEMPLATE_PREFIX + k[len(first) :]: v.clone() for k, v in lt.items() if k.startswith(first)}
        return {LINEAR_IN_NAME: cpu(self.linear_in_embedding), LIST_TRANSFORMER_NAME: {**template, **lt}}

    def save_pretrained(self, folder: str | Path, save_embedder: bool = True) -> None:
        """Write a folder :func:`perank.families.listconranker.checkpoint.load_model` reads: the embedder and
        tokenizer (``save_pretrained``), the head files (:meth:`head_state_dicts`), and the config.

        ``save_embedder=False`` (an embedder that stayed frozen) writes no embedder or tokenizer: the config's
        ``embedder`` names :attr:`embedder_source` instead, so the folder holds only what was trained."""
        folder = Path(folder)
        if save_embedder:
            config = replace(self.config, embedder=None)
        elif self.embedder_source:
            config = replace(self.config, embedder=self.embedder_source)
        else:
            raise InputError(f"{self.name_or_path}: no embedder name to point at; save the folder with its embedder")
        folder.mkdir(parents=True, exist_ok=True)
        if save_embedder:
            self.embedder.save_pretrained(folder)
            self.tokenizer.save_pretrained(folder)
        for name, state in self.head_state_dicts().items():
            torch.save(state, folder / name)
        config.save(folder)
