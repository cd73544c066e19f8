"""The flags of ``--family listconranker`` (parsed with ``HfArgumentParser`` with every TrainingArguments flag).

Circle Loss defaults (``--circle_gamma 32 --circle_margin 0.25``): ListConRanker's own values are not
published. The margin is the paper's (arXiv 2002.10857, m = 0.25): positives are pushed above 1 - m = 0.75 and
negatives below m = 0.25 on the model's (0, 1) sigmoid scores. The scale is lowered from the paper's 256 (face
recognition, cosines in [-1, 1] over thousands of classes): the spread of sigmoid scores inside one list of 16
is a few tenths, and with gamma 256 the log-sum-exp over pairs becomes a hard max over the single hardest
pair (gamma * alpha * 0.1 ~ 19 nats apart), a noisy signal at the small batches a CPU affords; at 32 it
stays a soft weighting of the hard pairs (~2.4 nats) while still emphasising them. With ``--residual_init`` the
loss reads the cosine instead (Circle Loss's own domain, [-1, 1]): the same m then asks positives above 0.75 and
negatives below 0.25, a short way from a MiniLM cosine (see :meth:`ListConRankerModel.loss_scores`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perank.training.arguments import TrainingArguments as BaseTrainingArguments


@dataclass
class ModelArguments:
    """The model to train: a plain embedder (fresh head) or a ListConRanker folder (e.g. stage 1's output)."""

    model_name_or_path: str = field(
        default="all-minilm-l6-v2", metadata={"help": "an embedder (fresh head) or a ListConRanker folder / hub id"}
    )
    freeze_embedder: bool = field(
        default=False, metadata={"help": "stage 1: train only the projection, list transformer and head"}
    )
    max_length: int | None = field(
        default=None, metadata={"help": "tokens per text (default: the folder's, or 512 for a fresh head)"}
    )
    num_layers: int = field(default=2, metadata={"help": "list-transformer layers of a fresh head (published: 2)"})
    residual_init: bool = field(
        default=False,
        metadata={
            "help": "a fresh head as a residual branch on the embedder's embedding, its output layer at zero: "
            "training starts from the embedder's cosine ranking (perank's option, not the published head)"
        },
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "run the embedder's own code from the hub"})


@dataclass
class DataArguments:
    """The query groups and how a training list is drawn from each."""

    data_path: str = field(
        default="", metadata={"help": "FlagEmbedding JSONL {query, pos, neg} (perank build-pair-data)"}
    )
    group_size: int = field(default=16, metadata={"help": "passages per training list (positives + negatives)"})
    max_positives: int | None = field(
        default=None, metadata={"help": "at most this many positives per list (default: a quarter of the list)"}
    )

    def positives(self) -> int:
        """``--max_positives``, or a quarter of ``--group_size`` (at least 1): lists need negatives to contrast."""
        return self.max_positives if self.max_positives is not None else max(1, self.group_size // 4)


@dataclass
class TrainingArguments(BaseTrainingArguments):
    """The shared TrainingArguments plus Circle Loss and the frozen-embedder cache."""

    circle_gamma: float = field(default=32.0, metadata={"help": "Circle Loss scale gamma (module docstring)"})
    circle_margin: float = field(default=0.25, metadata={"help": "Circle Loss relaxation margin m, in [0, 0.5)"})
    cache_embeddings: bool = field(
        default=True, metadata={"help": "with --freeze_embedder: keep each text's pooled embedding in memory"}
    )
    embedding_cache: str | None = field(
        default=None,
        metadata={
            "help": "with --residual_init and --freeze_embedder: preload the embedder's normalised embeddings "
            "(.pt {text key: vector}, the dense teacher's file that perank build-pair-data --embeddings writes)"
        },
    )

    def __post_init__(self) -> None:
        # the batches carry texts, which the loss module's forward takes and the Trainer must not drop
        self.remove_unused_columns = False
        super().__post_init__()
