"""The flags of ``--family jina-listwise`` (parsed with ``HfArgumentParser`` with every TrainingArguments flag).

The base is any causal LM transformers knows (default: the packaged SmolLM2-135M-Instruct, ``smollm2``), frozen
but for LoRA adapters (r8/alpha16 on attention and MLP by default: ~9.8 MB for SmolLM2, the issue's budget is 20),
the two markers' embedding rows and a fresh projector ``hidden -> hidden / 2 -> --projection_dim``. The prompt
settings are the ``jina-listwise`` reranker's options (``--max_query_length``, ``--max_doc_length``) plus the
slate (``--slate_size`` candidates per prompt), recorded in every save so the reranker reads its trained folder
with them. Loss settings: :mod:`.losses`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perank.training.arguments import LoraArguments
from perank.training.ranked_list_runner import RankedListDataArguments, RankedListTrainingArguments


@dataclass
class ModelArguments(LoraArguments):
    """The base causal LM, its LoRA adapters and the projector's output size."""

    model_name_or_path: str = field(
        default="smollm2", metadata={"help": "the base causal LM: packaged alias, folder or hub id"}
    )
    lora_enable: bool = field(default=True, metadata={"help": "always on here: the base stays frozen"})
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    projection_dim: int = field(default=512, metadata={"help": "the projector's output size (published: 512)"})


#: what ``--slate_size`` means here (the shared flag, also the saved block size)
SLATE_HELP = (
    "candidates per prompt: the teacher's top one and a random draw of the others, in first-stage "
    "order, redrawn each epoch (default: the whole window); also the reranker's block_size for the save"
)


@dataclass
class DataArguments(RankedListDataArguments):
    """The teacher lists and the prompts built from them (the reranker's options)."""

    slate_size: int | None = field(default=None, metadata={"help": SLATE_HELP})
    max_doc_length: int = field(default=128, metadata={"help": "tokens per candidate (the reranker's option)"})
    max_query_length: int = field(default=64, metadata={"help": "tokens of the query (the reranker's option)"})


@dataclass
class TrainingArguments(RankedListTrainingArguments):
    """The shared TrainingArguments plus the loss settings (:mod:`.losses`)."""

    temperature: float = field(default=0.05, metadata={"help": "cosines are divided by it for both losses"})
    loss_infonce_factor: float = field(default=1.0, metadata={"help": "weight of the in-list InfoNCE"})
    loss_ranknet_factor: float = field(default=1.0, metadata={"help": "weight of RankNet over teacher pairs"})
