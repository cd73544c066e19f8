"""Command-line arguments of ``src/train.py --family pe-rank``: the original PE-Rank flags plus ours.

Parsed with ``HfArgumentParser`` into three dataclasses, so every ``transformers.TrainingArguments`` flag
works too. The flags every family shares (LLM loading, LoRA, the legacy ``--evaluation_strategy`` and
``--overwrite_output_dir``, the CPU downgrade) come from :mod:`perank.training.arguments`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perank.families.pe_rank.settings import PERankSettings
from perank.training.arguments import BackboneArguments, LoraArguments
from perank.training.arguments import TrainingArguments as BaseTrainingArguments


@dataclass
class ModelArguments(PERankSettings, BackboneArguments, LoraArguments):
    """Which models to join and which parts train; the model's shape (``--projector_type``,
    ``--relevance_feature``, ...) is :class:`PERankSettings`, shared with ``perank.cli.assemble``."""

    model_type: str = field(default="causal_lm", metadata={"help": "causal_lm (stage 1) or rank_lm (stage 2)"})
    model_name_or_path: str = field(default="smollm2", metadata={"help": "base causal LM (hub id, path or alias)"})
    encoder_name: str = field(default="all-minilm-l6-v2", metadata={"help": "frozen passage encoder"})
    freeze_backbone: bool = field(default=False, metadata={"help": "freeze the LLM (stage 1)"})
    tune_mlp_adapter: bool = field(default=False, metadata={"help": "train the projector"})
    pretrain_mlp_adapter: str | None = field(
        default=None, metadata={"help": "stage-1 projector: projector.bin, projector.safetensors or its folder"}
    )
    init_from: str | None = field(
        default=None,
        metadata={"help": "start from this perank checkpoint (its LoRA adapter and projector; its settings win)"},
    )


@dataclass
class DataArguments:
    """Where the data is and which prompt variants the loss uses."""

    data_path: str = field(default="", metadata={"help": "training JSONL (wiki2m-style or train.jsonl)"})
    use_embedding_with_content: bool = field(default=False, metadata={"help": "stage 2: embedding+text prompt"})
    use_embedding_without_content: bool = field(default=True, metadata={"help": "stage 2: embedding-only prompt"})


@dataclass
class TrainingArguments(BaseTrainingArguments):
    """The shared TrainingArguments plus PE-Rank's loss weights, max length and embedding cache."""

    model_max_length: int = field(default=512, metadata={"help": "longer rows are errors (stage 1: prompt)"})
    loss1_weight: float = field(default=1.0, metadata={"help": "ListMLE weight, embedding-only prompt"})
    loss2_weight: float = field(default=1.0, metadata={"help": "ListMLE weight, embedding+text prompt"})
    kl_loss_weight: float = field(default=0.0, metadata={"help": "weight of KL(with content || without)"})
    listmle_weighting: str = field(default="uniform", metadata={"help": "uniform (mean) or top (1/2^k, summed)"})
    projector_lr: float | None = field(default=None, metadata={"help": "projector learning rate (default: lr)"})
    relevance_lr: float | None = field(
        default=None, metadata={"help": "learning rate of the relevance direction (default: --projector_lr)"}
    )
    cache_embeddings: bool = field(default=True, metadata={"help": "cache frozen-encoder outputs by text"})
    embedding_cache: str | None = field(
        default=None, metadata={"help": "preload encoder embeddings (.pt from perank build-rank-data --embeddings)"}
    )

    def __post_init__(self) -> None:
        # our batches carry texts and rankings that the model's forward signature does not name
        self.remove_unused_columns = False
        super().__post_init__()
