"""The flags of ``--family e2rank`` (parsed with ``HfArgumentParser`` with every TrainingArguments flag).

Loss settings keep E2Rank's flag names and take the values of its training script
(Alibaba-NLP/E2Rank at 478f298): ``--loss_ranknet_factor 2.0`` and ``--ranknet_scale_factor 10.0``
(``scripts/train_e2rank_0.6b.sh:253-254``), ``--loss_embed_factor 1.0`` and ``--temperature 0.03`` (the defaults
of ``src/arguments.py:239-244``, which the script leaves as they are). A factor of 0 turns that loss off.

E2Rank fine-tunes every weight of a 0.6B embedder (lr 5e-6); here the embedder is frozen and LoRA adapters train
(``--lora_*``, every linear layer the embedder reads by default), so a trained folder is a few MB beside the
packaged MiniLM instead of a copy of it. The text settings (``--k``, ``--prompt``, ``--task``,
``--passage_words``, ``--max_length``) are the ``e2rank`` reranker's options, recorded in every save so the
reranker reads its trained folder with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perank.families.e2rank.settings import DEFAULTS
from perank.training.ranked_list_runner import RankedListDataArguments, RankedListTrainingArguments


@dataclass
class ModelArguments:
    """The embedder, its token limit and the LoRA adapters trained on it."""

    model_name_or_path: str = field(
        default="all-minilm-l6-v2", metadata={"help": "a sentence-transformers embedder: alias, folder or hub id"}
    )
    max_length: int | None = field(
        default=None, metadata={"help": "tokens per text, every kind (default: the embedder's own, MiniLM 256)"}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scale numerator (scale = alpha / r)"})
    lora_dropout: float = field(default=0.0, metadata={"help": "dropout on the LoRA input"})
    lora_target_modules: str = field(
        default="all-linear", metadata={"help": "comma-separated module names, or every linear layer read"}
    )


#: what ``--slate_size`` means here (the shared flag, E2Rank's default)
SLATE_HELP = (
    "candidates per row the losses score: the teacher's top one and a random draw of the others, "
    "redrawn each epoch (default: all, as E2Rank; the pseudo-query always shows the first k)"
)


@dataclass
class DataArguments(RankedListDataArguments):
    """The teacher lists and the texts built from them (the reranker's options)."""

    slate_size: int | None = field(default=None, metadata={"help": SLATE_HELP})
    k: int = field(default=DEFAULTS["k"], metadata={"help": "candidates in the pseudo-query (E2Rank: 20)"})
    prompt: str = field(default=DEFAULTS["prompt"], metadata={"help": "e2rank (query last) or query-first"})
    task: str = field(default=DEFAULTS["task"], metadata={"help": "the template set (web-search = dl19 = dl20)"})
    passage_words: int = field(default=DEFAULTS["passage_words"], metadata={"help": "words kept per passage"})


@dataclass
class TrainingArguments(RankedListTrainingArguments):
    """The shared TrainingArguments plus E2Rank's loss settings (module docstring)."""

    loss_embed_factor: float = field(default=1.0, metadata={"help": "weight of the InfoNCE of the plain query"})
    temperature: float = field(default=0.03, metadata={"help": "InfoNCE temperature on cosines"})
    loss_ranknet_factor: float = field(default=2.0, metadata={"help": "weight of RankNet on pseudo-query scores"})
    ranknet_scale_factor: float = field(default=10.0, metadata={"help": "cosines are multiplied by it for RankNet"})
