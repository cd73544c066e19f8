"""The model ``--family jina-listwise`` trains: a causal LM with the two markers and LoRA, and a fresh projector.

The base is loaded as inference loads a causal LM (:func:`perank.backends.lm_loading.load_causal_lm`, fp32), the
markers added to its tokenizer (:func:`perank.families.jina_listwise.trained.add_markers`: a new marker's row
starts at the mean of the vocabulary's rows) and the whole base frozen. Only three things train:

- the LoRA adapters (:func:`perank.training.lora.apply_lora`);
- the two marker rows, held apart in :class:`MarkerEmbedding` (the embedding matrix itself stays frozen, so the
  optimizer carries 2 x hidden numbers, not the vocabulary's);
- the projector ``Linear(hidden, hidden / 2) -> ReLU -> Linear(hidden / 2, projection_dim)``, no biases, as
  published (torch's default init, drawn after the adapters from ``--seed``).

The scorer is the reranker's :class:`perank.families.jina_listwise.model.JinaListwiseModel` over the LoRA-wrapped
decoder (the causal LM's public ``get_decoder()``), so training computes what inference computes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from perank.families.jina_listwise.model import BlockOutput, JinaListwiseModel


class MarkerEmbedding(nn.Module):
    """An input embedding whose rows for the marker ids are the trainable ``rows`` ([2, hidden]) and whose other
    rows are the frozen ``base``'s. The saved layout writes ``rows`` into the matrix (:mod:`...trained`)."""

    def __init__(self, base: nn.Embedding, ids: tuple[int, int], rows: Tensor) -> None:
        super().__init__()
        self.base = base
        self.ids = tuple(int(i) for i in ids)
        self.rows = nn.Parameter(rows.clone().to(base.weight.dtype))

    @property
    def weight(self) -> Tensor:
        """The frozen matrix (what callers of ``get_input_embeddings().weight`` read: its shape, its dtype)."""
        return self.base.weight

    def forward(self, input_ids: Tensor) -> Tensor:
        out = self.base(input_ids)
        for k, token in enumerate(self.ids):
            out = torch.where((input_ids == token).unsqueeze(-1), self.rows[k].to(out.dtype), out)
        return out


class JinaTrainingModel(nn.Module):
    """``adapter`` (the peft-wrapped causal LM, for saving), ``scorer`` (over its decoder) and ``markers``."""

    # read by the Trainer after a resumed run loads the checkpoint's trainable tensors (every frozen key is
    # "missing" then): None says no key is left out on purpose, so it only warns
    _keys_to_ignore_on_save: list[str] | None = None

    def __init__(self, adapter: nn.Module, scorer: JinaListwiseModel, markers: MarkerEmbedding) -> None:
        super().__init__()
        self.adapter = adapter
        self.scorer = scorer
        self.markers = markers

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> BlockOutput:
        return self.scorer(input_ids, attention_mask)


def base_name(name: str) -> str:
    """How the adapter config names the base: a packaged alias or hub id as given, a local folder absolute (the
    saved folder is read from anywhere)."""
    return str(Path(name).resolve()) if Path(name).exists() else name


def build_training_model(args: Any, seed: int) -> tuple[JinaTrainingModel, Any]:
    """``(model, tokenizer)``: the base of ``args.model_name_or_path`` with markers, LoRA and a fresh projector
    (module docstring); only those train."""
    from perank.backends.lm_loading import load_causal_lm
    from perank.families.jina_listwise.trained import add_markers
    from perank.training.lora import apply_lora

    llm, tokenizer = load_causal_lm(args.model_name_or_path, device=torch.device("cpu"), dtype=torch.float32)
    llm.config.use_cache = False
    ids, rows = add_markers(llm, tokenizer)
    llm.requires_grad_(False)
    markers = MarkerEmbedding(llm.get_input_embeddings(), ids, rows)
    llm.set_input_embeddings(markers)
    torch.manual_seed(seed)  # the adapters' and the projector's random start, whatever ran before
    adapter = apply_lora(llm, args)
    adapter.peft_config["default"].base_model_name_or_path = base_name(args.model_name_or_path)
    markers.rows.requires_grad_(True)  # peft froze every non-adapter parameter
    hidden = int(llm.config.hidden_size)
    projector = nn.Sequential(
        nn.Linear(hidden, hidden // 2, bias=False), nn.ReLU(), nn.Linear(hidden // 2, args.projection_dim, bias=False)
    )
    scorer = JinaListwiseModel(adapter.get_base_model().get_decoder(), projector, *ids)
    return JinaTrainingModel(adapter, scorer, markers).train(), tokenizer
