"""Command-line arguments of ``src/train.py``: the original PE-Rank flags plus ours.

Parsed with ``HfArgumentParser`` into three dataclasses, so every ``transformers.TrainingArguments`` flag
works too. Two flags the original commands pass but transformers 5 no longer knows are kept as aliases:
``--evaluation_strategy`` (now ``eval_strategy``) and ``--overwrite_output_dir`` (start afresh instead of
resuming from the last checkpoint in ``output_dir``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
import transformers

logger = logging.getLogger("perank.train")


@dataclass
class ModelArguments:
    """Which models to join and which parts train."""

    model_type: str = field(default="causal_lm", metadata={"help": "causal_lm (stage 1) or rank_lm (stage 2)"})
    model_name_or_path: str = field(default="smollm2", metadata={"help": "base causal LM (hub id, path or alias)"})
    encoder_name: str = field(default="all-minilm-l6-v2", metadata={"help": "frozen passage encoder"})
    encoder_pooling: str | None = field(default=None, metadata={"help": "mean, cls or last_token (default: auto)"})
    encoder_max_length: int = field(default=256, metadata={"help": "encoder truncation, training and inference"})
    projector_type: str = field(default="mlp2x_gelu", metadata={"help": "linear or mlp{N}x_gelu"})
    freeze_backbone: bool = field(default=False, metadata={"help": "freeze the LLM (stage 1)"})
    tune_mlp_adapter: bool = field(default=False, metadata={"help": "train the projector"})
    pretrain_mlp_adapter: str | None = field(
        default=None, metadata={"help": "stage-1 projector: projector.bin, projector.safetensors or its folder"}
    )
    query_embedding: bool = field(
        default=False, metadata={"help": "inject the query's own embedding as one more token (prompts.py)"}
    )
    query_embedding_position: str = field(
        default="prompt", metadata={"help": "prompt (after the query text) or answer (first answer token)"}
    )
    query_text: bool = field(
        default=True,
        metadata={"help": "show the query's text in the prompt; False needs --query_embedding (prompts.py)"},
    )
    attn_implementation: str | None = field(default=None, metadata={"help": "sdpa, eager or flash_attention_2"})
    trust_remote_code: bool = field(default=False, metadata={"help": "for encoders such as jina v2"})
    lora_enable: bool = field(default=False, metadata={"help": "train LoRA adapters instead of the full LLM"})
    lora_r: int = 64
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: str = field(
        default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
        metadata={"help": "comma-separated module names (or 'all-linear')"},
    )


@dataclass
class DataArguments:
    """Where the data is and which prompt variants the loss uses."""

    data_path: str = field(default="", metadata={"help": "training JSONL (wiki2m-style or train.jsonl)"})
    use_embedding_with_content: bool = field(default=False, metadata={"help": "stage 2: embedding+text prompt"})
    use_embedding_without_content: bool = field(default=True, metadata={"help": "stage 2: embedding-only prompt"})


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    """TrainingArguments plus the loss weights, max length and the original's legacy flags."""

    model_max_length: int = field(default=512, metadata={"help": "longer rows are errors (stage 1: prompt)"})
    loss1_weight: float = field(default=1.0, metadata={"help": "ListMLE weight, embedding-only prompt"})
    loss2_weight: float = field(default=1.0, metadata={"help": "ListMLE weight, embedding+text prompt"})
    kl_loss_weight: float = field(default=0.0, metadata={"help": "weight of KL(with content || without)"})
    listmle_weighting: str = field(default="uniform", metadata={"help": "uniform (mean) or top (1/2^k, summed)"})
    projector_lr: float | None = field(default=None, metadata={"help": "projector learning rate (default: lr)"})
    cache_embeddings: bool = field(default=True, metadata={"help": "cache frozen-encoder outputs by text"})
    embedding_cache: str | None = field(
        default=None, metadata={"help": "preload encoder embeddings (.pt from build_rank_data.py --embeddings)"}
    )
    overwrite_output_dir: bool = field(default=False, metadata={"help": "do not resume from output_dir"})
    evaluation_strategy: str | None = field(default=None, metadata={"help": "legacy alias of eval_strategy"})

    def __post_init__(self) -> None:
        # before TrainingArguments validates them: on CPU, GPU-only precision settings are downgraded, not fatal
        if self.use_cpu or not torch.cuda.is_available():
            if self.bf16 or self.fp16:
                logger.warning("bf16/fp16 requested on CPU: training in fp32 instead (bf16 is several times slower)")
                self.bf16 = self.fp16 = False
            if self.tf32:
                logger.warning("tf32 requested on CPU: ignored (it is an Ampere GPU setting)")
                self.tf32 = None
        if self.evaluation_strategy is not None:
            self.eval_strategy = self.evaluation_strategy
        # our batches carry texts and rankings that the model's forward signature does not name
        self.remove_unused_columns = False
        super().__post_init__()
