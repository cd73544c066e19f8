"""``--family jina-listwise``: jina-reranker-v3's listwise scorer trained on the shared path for
ranked lists (:class:`perank.training.ranked_list_runner.RankedListRunner`).

A causal LM (the packaged SmolLM2-135M by default) gets the two markers, LoRA adapters and a fresh projector
(:mod:`.model`) and learns from ``perank build-rank-data`` rows, one prompt per list written by the reranker's
own code (:mod:`.data`), with in-list InfoNCE + RankNet on the cosines (:mod:`.losses`). The published model was
trained in full (Qwen3-0.6B, three stages); ``recipes/jina_listwise/train_small.sh`` is the CPU version. A
resumed run rebuilds the same fresh parts from ``--seed`` and the Trainer loads the checkpoint's into them.
"""

from __future__ import annotations

from typing import Any

from perank.training.ranked_list_runner import RankedListRunner, check_loss_settings, refuse_adapter_start
from perank.training.runner import RunArguments
from perank.types import InputError


def _positive(flag: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise InputError(f"{flag} {value}: must be at least 1")


class JinaListwiseRunner(RankedListRunner):
    """LoRA + markers + projector on a causal LM, in-list InfoNCE + RankNet over teacher-ranked lists."""

    family = "jina-listwise"

    def argument_classes(self) -> tuple[type[Any], type[Any], type[Any]]:
        """The model, data and training dataclasses (:mod:`.arguments`)."""
        from perank.families.jina_listwise.training.arguments import DataArguments, ModelArguments, TrainingArguments

        return ModelArguments, DataArguments, TrainingArguments

    def validate(self, args: RunArguments) -> None:
        """The shared data checks, then usable lengths, adapters and losses (before any loading)."""
        super().validate(args)
        model, data, training = args.model, args.data, args.training
        _positive("--max_doc_length", data.max_doc_length)
        _positive("--max_query_length", data.max_query_length)
        _positive("--projection_dim", model.projection_dim)
        _positive("--lora_r", model.lora_r)
        if not model.lora_enable:
            raise InputError("--lora_enable False: this runner trains LoRA adapters only (its save is an adapter)")
        refuse_adapter_start(model.model_name_or_path, "model")
        check_loss_settings(training, ("loss_infonce_factor", "loss_ranknet_factor"))

    def build_model(self, args: RunArguments) -> Any:
        """The base with markers, LoRA (drawn from ``--seed``) and a fresh projector (:mod:`.model`)."""
        from perank.families.jina_listwise.training.model import build_training_model

        model, self.tokenizer = build_training_model(args.model, args.training.seed)
        return model

    def build_dataset(self, args: RunArguments, model: Any) -> tuple[Any, Any]:
        """Every row validated (file:line errors), held-out queries refused, slates drawn per item and epoch."""
        from perank.families.jina_listwise.blocks import PromptLimits
        from perank.families.jina_listwise.training.data import PromptCollator
        from perank.training.ranked_lists import RankedListDataset

        data = args.data
        lists = self.read_lists(args)
        self.block_size = data.slate_size or max(len(item.window) for item in lists)
        self.limits = PromptLimits(data.max_query_length, data.max_doc_length, self.context(model), self.block_size)
        dataset = RankedListDataset(lists, data.slate_size, seed=args.training.seed)
        return dataset, PromptCollator(self.tokenizer, self.limits)

    def context(self, model: Any) -> int:
        """The tokens a prompt may fill: the tokenizer's limit, capped by the base's positions (SmolLM2's
        tokenizer says 1e30, its config 8,192)."""
        config = model.adapter.get_base_model().config
        positions = getattr(config, "max_position_embeddings", None)
        limit = int(min(self.tokenizer.model_max_length, positions or self.tokenizer.model_max_length))
        return limit

    def build_trainer(self, args: RunArguments, model: Any, dataset: Any, collator: Any) -> Any:
        """:class:`JinaListwiseTrainer`, writing the small layout with the settings the reranker takes."""
        from perank.families.jina_listwise.training.model import base_name
        from perank.families.jina_listwise.training.trainer import JinaListwiseTrainer

        config = {
            "base": base_name(args.model.model_name_or_path),
            "marker_init": "the mean of the base vocabulary's embedding rows (a marker the base had: its own row)",
            "projector": [
                int(model.scorer.projector[0].in_features),
                *(int(m.out_features) for m in model.scorer.projector[::2]),
            ],
            "settings": {
                "max_query_length": self.limits.max_query_length,
                "max_doc_length": self.limits.max_doc_length,
                "max_length": self.limits.max_length,
                "block_size": self.block_size,
            },
        }
        return JinaListwiseTrainer(
            model=model,
            args=args.training,
            train_dataset=dataset,
            data_collator=collator,
            tokenizer=self.tokenizer,
            config=config,
        )
