"""jina-reranker-v3's model, loaded from its published checkpoint without its remote code.

The published ``JinaForRanking`` (``jinaai/jina-reranker-v3``, ``modeling.py`` at commit 050e171) is a
``Qwen3ForCausalLM`` whose vocabulary head is unused: it reads the decoder's last hidden state (after the final
norm) at every ``<|embed_token|>`` (one per passage) and at the one ``<|rerank_token|>`` (after the query), maps
each through a projector ``Linear(hidden, hidden / 2, bias=False) -> ReLU -> Linear(hidden / 2, 512,
bias=False)`` and scores a passage by the cosine of its vector with the query's. Here the decoder is the
transformers class of the checkpoint's ``model_type`` (``Qwen3Model``, never the remote code), the projector a
plain ``nn.Sequential`` whose sizes are read from the weights, and the checkpoint's keys are checked one by one:
``model.*`` is the decoder, ``projector.0.weight`` and ``projector.2.weight`` the projector, ``lm_head.*`` (tied,
unused) is ignored, anything else is refused by name.

:class:`JinaListwiseModel` is an ``nn.Module`` whose forward takes a padded batch of prompts (one block each,
right-padded, so every real token keeps the positions it has alone) and returns, per prompt, the projected
query and passage vectors and the in-block cosines as differentiable tensors: what a trainer needs.
:func:`merge_blocks` is the published ``rerank``'s last step for a list longer than one block.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perank.backends.lm_loading import load_tokenizer
from perank.backends.runtime import default_attn_implementation
from perank.backends.weights import read_state
from perank.families.jina_listwise.prompts import DOC_MARKER, QUERY_MARKER
from perank.types import InputError

PROJECTOR_KEYS = ("projector.0.weight", "projector.2.weight")


@dataclass
class BlockOutput:
    """One forward pass over ``rows`` prompts: ``query_vectors`` ``[rows, dim]``; per prompt, ``doc_vectors``
    ``[n_i, dim]`` (passages in prompt order) and ``scores`` ``[n_i]``, the cosine of each passage with its
    prompt's query (jina's in-block score)."""

    query_vectors: Tensor
    doc_vectors: list[Tensor]
    scores: list[Tensor]

    def padded_scores(self, fill: float = float("-inf")) -> tuple[Tensor, Tensor]:
        """``(scores [rows, max n], mask)``: the rows' scores side by side, ``fill`` beyond each row's passages
        and ``mask`` True where there is a passage (for a listwise loss over a batch of lists)."""
        width = max((len(s) for s in self.scores), default=0)
        out = self.query_vectors.new_full((len(self.scores), width), fill)
        mask = torch.zeros((len(self.scores), width), dtype=torch.bool, device=out.device)
        for row, scores in enumerate(self.scores):
            out[row, : len(scores)] = scores
            mask[row, : len(scores)] = True
        return out, mask


class JinaListwiseModel(nn.Module):
    """A decoder plus jina's projector, scoring the passages of each prompt against its query (module docstring).

    ``doc_token_id``/``query_token_id`` are the markers' ids in the model's tokenizer (151670 and 151671 in the
    published one)."""

    def __init__(self, backbone: nn.Module, projector: nn.Sequential, doc_token_id: int, query_token_id: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector
        self.doc_token_id = int(doc_token_id)
        self.query_token_id = int(query_token_id)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> BlockOutput:
        """Vectors and in-block scores of a batch of prompts (each with exactly one query marker)."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        is_doc = (input_ids == self.doc_token_id) & attention_mask.bool()
        is_query = (input_ids == self.query_token_id) & attention_mask.bool()
        per_row = is_query.sum(dim=1)
        if bool((per_row != 1).any()):
            bad = int(torch.nonzero(per_row != 1)[0, 0])
            raise ValueError(f"prompt {bad} holds {int(per_row[bad])} query markers ({QUERY_MARKER}), expected 1")
        queries = self.projector(hidden[is_query])
        docs = self.projector(hidden[is_doc]).split(is_doc.sum(dim=1).tolist())
        scores = [F.cosine_similarity(d, q.expand_as(d), dim=-1) for q, d in zip(queries, docs)]
        return BlockOutput(query_vectors=queries, doc_vectors=list(docs), scores=scores)


def merge_blocks(query_vectors: Tensor, doc_vectors: list[Tensor], block_scores: list[Tensor]) -> Tensor:
    """The final scores of one query's passages (all blocks, in order), as the published ``rerank`` computes them.

    Each block's query vector is weighted by its best in-block score mapped to [0, 1], ``max((1 + s) / 2)``; the
    weighted mean query vector is then compared with every passage vector by cosine. With one block this is the
    in-block cosine. Computed in float64 (the published code uses float32 numpy; the two agree to ~1e-7)."""
    weights = torch.stack([((1.0 + s.double()) / 2.0).max() for s in block_scores])
    query = (weights[:, None] * query_vectors.double()).sum(dim=0) / weights.sum()
    docs = torch.cat([d.double() for d in doc_vectors])
    return (docs @ query) / (docs.norm(dim=1) * query.norm())


def marker_ids(tokenizer: Any, where: str) -> tuple[int, int]:
    """``(document marker id, query marker id)`` in ``tokenizer``; a tokenizer without them is not jina's."""
    ids = []
    for marker in (DOC_MARKER, QUERY_MARKER):
        encoded = tokenizer(marker, add_special_tokens=False)["input_ids"]
        if len(encoded) != 1 or encoded[0] == getattr(tokenizer, "unk_token_id", None):
            raise InputError(f"{where}: its tokenizer has no {marker} token: not a jina-reranker-v3 checkpoint")
        ids.append(int(encoded[0]))
    return ids[0], ids[1]


def split_state(state: dict[str, Tensor], where: str) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """``(decoder weights without their "model." prefix, projector weights)``; other keys are refused."""
    backbone = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    projector = {k: v for k, v in state.items() if k.startswith("projector.")}
    other = sorted(k for k in state if not k.startswith(("model.", "projector.", "lm_head.")))
    if other or sorted(projector) != sorted(PROJECTOR_KEYS) or not backbone:
        what = f"unexpected {', '.join(other[:3])}" if other else f"projector keys {sorted(projector)}"
        raise InputError(f"{where}: not jina-reranker-v3's layout (model.*, {', '.join(PROJECTOR_KEYS)}): {what}")
    return backbone, projector


def build_projector(weights: dict[str, Tensor], hidden: int, where: str) -> nn.Sequential:
    """``Linear -> ReLU -> Linear`` without biases, sized by the weights (published: 1024 -> 512 -> 512)."""
    first, second = weights[PROJECTOR_KEYS[0]], weights[PROJECTOR_KEYS[1]]
    if first.ndim != 2 or second.ndim != 2 or first.shape[1] != hidden or second.shape[1] != first.shape[0]:
        raise InputError(
            f"{where}: projector shapes {list(first.shape)}, {list(second.shape)} do not chain from hidden {hidden}"
        )
    projector = nn.Sequential(
        nn.Linear(first.shape[1], first.shape[0], bias=False),
        nn.ReLU(),
        nn.Linear(second.shape[1], second.shape[0], bias=False),
    )
    projector.load_state_dict({"0.weight": first, "2.weight": second}, strict=True)
    return projector


def load_jina_listwise(folder: Path, *, device: torch.device, dtype: torch.dtype) -> tuple[JinaListwiseModel, Any]:
    """``(model in eval mode on device, tokenizer)`` of a checkpoint folder in jina-reranker-v3's layout (the small
    layout of a model trained here has its own loader, :func:`perank.families.jina_listwise.trained.load_trained`,
    which builds on this module: the reranker picks one)."""
    from transformers import MODEL_MAPPING, AutoConfig

    where = str(folder)
    try:
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        raise InputError(f"{where}: no readable config.json ({str(exc).splitlines()[0]})") from exc
    if type(config) not in MODEL_MAPPING:
        raise InputError(f"{where}: model_type {raw.get('model_type')!r} has no transformers decoder class")
    backbone_state, projector_state = split_state(read_state(folder), where)
    try:
        backbone, info = MODEL_MAPPING[type(config)].from_pretrained(
            None,
            config=config,
            state_dict=backbone_state,
            dtype=dtype,
            attn_implementation=default_attn_implementation(device),
            output_loading_info=True,
        )
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"{where}: the decoder weights do not fit its config ({str(exc).splitlines()[0]})") from exc
    wrong = sorted(info["missing_keys"]) + sorted(info["unexpected_keys"]) + sorted(map(str, info["mismatched_keys"]))
    if wrong:  # transformers would leave a missing weight random: refuse it by name instead
        raise InputError(f"{where}: the decoder weights do not match its config ({', '.join(wrong[:3])})")
    projector = build_projector(projector_state, int(config.hidden_size), where).to(dtype)
    tokenizer = load_tokenizer(folder)
    doc_id, query_id = marker_ids(tokenizer, where)
    model = JinaListwiseModel(backbone, projector, doc_id, query_id)
    return model.to(device).eval(), tokenizer
