"""``--family e2rank``: E2Rank's training on the shared path for ranked lists
(:class:`perank.training.ranked_list_runner.RankedListRunner`).

The embedder (the packaged all-MiniLM-L6-v2 by default, any sentence-transformers model otherwise) is loaded as
the ``e2rank`` reranker loads it, wrapped in LoRA adapters, and trained on ``perank build-rank-data`` rows with
InfoNCE + RankNet (:mod:`.losses`). The published recipe (``scripts/train_e2rank_0.6b.sh``) fine-tuned all of
Qwen3-Embedding-0.6B for one epoch, 128 lists per step, lr 5e-6; ``recipes/e2rank/train_small.sh`` is the CPU
version. A resumed run rebuilds the same fresh adapters and the Trainer loads the checkpoint's into them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perank.training.ranked_list_runner import RankedListRunner, check_loss_settings, refuse_adapter_start
from perank.training.runner import RunArguments
from perank.types import InputError


def base_name(name: str) -> str:
    """How the adapter config names the base: a packaged alias or hub id as given, a local folder absolute (the
    saved folder is read from anywhere)."""
    from perank.backends.resolve import is_packaged_minilm

    if is_packaged_minilm(name) or not Path(name).exists():
        return name
    return str(Path(name).resolve())


class E2RankRunner(RankedListRunner):
    """LoRA on an embedder, E2Rank's InfoNCE + RankNet over teacher-ranked lists."""

    family = "e2rank"

    def argument_classes(self) -> tuple[type[Any], type[Any], type[Any]]:
        """E2Rank's model, data and training dataclasses (:mod:`.arguments`)."""
        from perank.families.e2rank.training.arguments import DataArguments, ModelArguments, TrainingArguments

        return ModelArguments, DataArguments, TrainingArguments

    def validate(self, args: RunArguments) -> None:
        """The shared data checks, then text settings the reranker takes, usable losses and adapters (before any
        loading)."""
        from perank.families.e2rank.texts import check_options

        super().validate(args)
        model, data, training = args.model, args.data, args.training
        check_options(data.task, data.prompt, data.k, data.passage_words)
        if model.max_length is not None and model.max_length < 2:
            raise InputError(f"--max_length {model.max_length}: must be at least 2 (the special tokens)")
        if model.lora_r < 1:
            raise InputError(f"--lora_r {model.lora_r}: must be at least 1")
        refuse_adapter_start(model.model_name_or_path, "embedder")
        check_loss_settings(training, ("loss_embed_factor", "loss_ranknet_factor"))
        if not training.ranknet_scale_factor > 0:
            raise InputError(f"--ranknet_scale_factor {training.ranknet_scale_factor}: must be positive")

    def build_model(self, args: RunArguments) -> Any:
        """The embedder as the reranker loads it (fp32), its text builder kept, wrapped in LoRA adapters drawn from
        ``--seed``."""
        import torch

        from perank.backends.resolve import resolve_model
        from perank.backends.sentence_embedder import load_sentence_transformer
        from perank.families.e2rank.texts import check_options, for_model
        from perank.training.lora import apply_embedder_lora

        name, data = args.model.model_name_or_path, args.data
        try:
            self.embedder = load_sentence_transformer(
                resolve_model(name), device="cpu", max_length=args.model.max_length
            )
        except (OSError, FileNotFoundError, ValueError) as exc:
            raise InputError(
                f"--model_name_or_path {name}: cannot load a sentence-transformers embedder ({exc})"
            ) from exc
        prompts = check_options(data.task, data.prompt, data.k, data.passage_words)
        self.texts = for_model(self.embedder, prompts, data.prompt, data.k, data.passage_words)
        torch.manual_seed(args.training.seed)  # the adapters' random start, whatever ran in this process before
        return apply_embedder_lora(self.embedder, args.model, base_name=base_name(name))

    def build_dataset(self, args: RunArguments, model: Any) -> tuple[Any, Any]:
        """Every row validated (file:line errors), held-out queries refused, slates drawn per item and epoch."""
        from perank.families.e2rank.training.data import RankedListCollator
        from perank.training.ranked_lists import RankedListDataset

        dataset = RankedListDataset(self.read_lists(args), args.data.slate_size, seed=args.training.seed)
        collator = RankedListCollator(self.embedder, self.texts, pseudo_queries=args.training.loss_ranknet_factor > 0)
        return dataset, collator

    def build_trainer(self, args: RunArguments, model: Any, dataset: Any, collator: Any) -> Any:
        """:class:`E2RankTrainer`, which records the text settings beside every save."""
        from perank.families.e2rank.training.trainer import E2RankTrainer

        data = args.data
        settings = {
            "task": data.task,
            "prompt": data.prompt,
            "k": data.k,
            "passage_words": data.passage_words,
            "max_length": int(self.embedder.max_seq_length),
        }
        return E2RankTrainer(
            model=model, args=args.training, train_dataset=dataset, data_collator=collator, settings=settings
        )
