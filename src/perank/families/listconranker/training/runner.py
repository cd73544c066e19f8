"""``--family listconranker``: ListConRanker's two training stages on the shared path
(:class:`perank.training.runner.TrainingRunner`).

Stage 1: ``--freeze_embedder True`` from a plain embedder (``--model_name_or_path all-minilm-l6-v2``: a fresh
projection, list transformer and head of the published sizes scaled to it). Stage 2: everything trains,
``--model_name_or_path`` = stage 1's output folder. The published recipe ran stage 1 for 4 epochs (batch 1024)
and stage 2 for 2 (batch 256) over ~2.6M queries; ``recipes/listconranker/train_small.sh RESIDUAL=0`` is the CPU
version. Each save is a ListConRanker folder; a resumed run rebuilds the model from the checkpoint folder itself.

``--residual_init True`` builds perank's residual model instead (:mod:`perank.families.listconranker.model`: it
starts as the embedder's cosine ranking); over a frozen embedder its folders hold only the trained parts, and
``--embedding_cache`` preloads the dense teacher's embeddings (``recipes/listconranker/train_small.sh``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from perank.families.listconranker.model import LIST_TRANSFORMER_NAME
from perank.training.runner import RunArguments, TrainingRunner
from perank.types import InputError

logger = logging.getLogger("perank.train")


class ListConRankerRunner(TrainingRunner):
    """Circle Loss over query lists; the embedder frozen (stage 1) or not (stage 2)."""

    family = "listconranker"

    def argument_classes(self) -> tuple[type[Any], type[Any], type[Any]]:
        """ListConRanker's model, data and training dataclasses (:mod:`.arguments`)."""
        from perank.families.listconranker.training.arguments import DataArguments, ModelArguments, TrainingArguments

        return ModelArguments, DataArguments, TrainingArguments

    def validate(self, args: RunArguments) -> None:
        """Data to train on, list sizes that leave room for positives and negatives, a usable Circle Loss."""
        model, data, training = args.model, args.data, args.training
        if not data.data_path:
            raise InputError("--data_path is required (FlagEmbedding JSONL; perank build-pair-data writes it)")
        if data.group_size < 2:
            raise InputError(f"--group_size {data.group_size}: a list needs a positive and a negative")
        if not 1 <= data.positives() < data.group_size:
            raise InputError(f"--max_positives {data.max_positives}: must be at least 1 and below --group_size")
        if not training.circle_gamma > 0:
            raise InputError(f"--circle_gamma {training.circle_gamma}: must be positive")
        if not 0 <= training.circle_margin < 0.5:
            raise InputError(f"--circle_margin {training.circle_margin}: must be in [0, 0.5)")
        if model.max_length is not None and model.max_length < 2:
            raise InputError(f"--max_length {model.max_length}: must be at least 2")
        if model.num_layers < 1:
            raise InputError(f"--num_layers {model.num_layers}: must be at least 1")
        if training.embedding_cache and not (model.freeze_embedder and training.cache_embeddings):
            raise InputError("--embedding_cache: needs --freeze_embedder True and --cache_embeddings True")

    def restore_settings(self, args: RunArguments, checkpoint: str) -> None:
        """Build the model from the checkpoint folder being resumed (its head, sizes and embedder)."""
        if (Path(checkpoint) / LIST_TRANSFORMER_NAME).is_file():
            logger.info("resuming: the model is rebuilt from %s", checkpoint)
            args.model.model_name_or_path = checkpoint

    def build_model(self, args: RunArguments) -> Any:
        """The model (a fresh head or a saved folder) inside the Circle Loss module."""
        from perank.families.listconranker.checkpoint import init_model
        from perank.families.listconranker.training.model import ListConRankerTrainingModel

        model = init_model(
            args.model.model_name_or_path,
            max_length=args.model.max_length,
            num_layers=args.model.num_layers,
            seed=args.training.seed,
            trust_remote_code=args.model.trust_remote_code,
            residual=args.model.residual_init,
        )
        return ListConRankerTrainingModel(
            model,
            freeze_embedder=args.model.freeze_embedder,
            gamma=args.training.circle_gamma,
            margin=args.training.circle_margin,
            cache_embeddings=args.training.cache_embeddings,
        )

    def build_dataset(self, args: RunArguments, model: Any) -> tuple[Any, Any]:
        """Every query group read and validated (file:line errors), drawn into lists each epoch; the frozen
        embedder's cache preloaded from ``--embedding_cache`` (checked on training texts it holds)."""
        from perank.families.listconranker.training.data import ListDataset, collate_lists
        from perank.training.pairs import read_pair_groups

        groups = read_pair_groups(args.data.data_path)
        dataset = ListDataset(groups, args.data.group_size, args.data.positives(), seed=args.training.seed)
        if args.training.embedding_cache:
            texts = (t for g in groups for t in (g.query, *g.pos, *g.neg))
            count = model.preload_embeddings(args.training.embedding_cache, texts)
            logger.info("preloaded %d embeddings from %s", count, args.training.embedding_cache)
        return dataset, collate_lists

    def build_trainer(self, args: RunArguments, model: Any, dataset: Any, collator: Any) -> Any:
        """:class:`ListConRankerTrainer` (ListConRanker folders at every save)."""
        from perank.families.listconranker.training.model import ListConRankerTrainer

        return ListConRankerTrainer(model=model, args=args.training, train_dataset=dataset, data_collator=collator)
