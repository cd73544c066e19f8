"""``--family pe-rank`` (the default): stage 1 (``--model_type causal_lm``, projector alignment) or stage 2
(``rank_lm``, learning to rank) on the shared training path (:class:`perank.training.runner.TrainingRunner`).

What is PE-Rank's: a resumed checkpoint's PE-Rank settings (projector type, query-embedding token, encoder)
override the command line so the restored weights fit; a stage-1 projector can be loaded under the
original's key names (``--pretrain_mlp_adapter``); the encoder is always frozen, the projector trains with
``--tune_mlp_adapter`` and the LLM is frozen, LoRA-wrapped or fully trained.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from perank.training.runner import RunArguments, TrainingRunner
from perank.types import InputError

logger = logging.getLogger("perank.train")

# the checkpoint's settings that decide whether its weights fit: (argument name, perank_config.json key)
RESTORED_SETTINGS = (
    ("projector_type", "projector_type"),
    ("query_embedding", "query_embedding"),
    ("query_embedding_position", "query_embedding_position"),
    ("query_text", "query_text"),
    ("relevance_feature", "relevance_feature"),
    ("encoder_name", "encoder_name"),
    ("encoder_pooling", "encoder_pooling"),
    ("encoder_max_length", "encoder_max_length"),
)


def restore_settings(model_args: Any, checkpoint: str, keep: tuple[str, ...] = ()) -> None:
    """Adopt the PE-Rank settings stored in a checkpoint, warning when the command line disagrees
    (the arguments named in ``keep`` stay as given)."""
    from perank.families.pe_rank.model import CONFIG_NAME

    cfg_file = Path(checkpoint) / CONFIG_NAME
    if not cfg_file.exists():
        return
    cfg = json.loads(cfg_file.read_text())
    for arg, key in RESTORED_SETTINGS:
        if arg not in keep and key in cfg and getattr(model_args, arg) != cfg[key]:
            if getattr(model_args, arg) is not None:
                logger.warning(
                    "%s: using the checkpoint's %s=%r (command line: %r)",
                    checkpoint,
                    arg,
                    cfg[key],
                    getattr(model_args, arg),
                )
            setattr(model_args, arg, cfg[key])


def load_projector_weights(projector: torch.nn.Module, source: str) -> None:
    """Load a stage-1 projector: ``projector.bin`` (original key names), ``projector.safetensors`` or a folder."""
    path = Path(source)
    if path.is_dir():
        for name in ("projector.safetensors", "projector.bin"):
            if (path / name).exists():
                path = path / name
                break
        else:
            raise InputError(f"--pretrain_mlp_adapter {source}: no projector.safetensors or projector.bin there")
    if not path.exists():
        raise InputError(f"--pretrain_mlp_adapter {source}: file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    # original names look like "model.projector.0.weight" (or "...mm_projector.0.weight"): keep what follows
    cleaned = {}
    for key, value in state.items():
        marker = "projector."
        cleaned[key[key.rindex(marker) + len(marker) :] if marker in key else key] = value
    try:
        projector.load_state_dict(cleaned)
    except RuntimeError as exc:
        raise InputError(f"--pretrain_mlp_adapter {source}: does not fit this projector ({exc})") from exc


def _training_dtype(training_args: Any) -> torch.dtype:
    """The dtype the LLM is loaded in: the Trainer's mixed-precision setting, fp32 otherwise."""
    if training_args.bf16:
        return torch.bfloat16
    return torch.float16 if training_args.fp16 else torch.float32


class PERankRunner(TrainingRunner):
    """PE-Rank's two stages: ``--model_type causal_lm`` (alignment) and ``rank_lm`` (ListMLE ranking)."""

    family = "pe-rank"

    def argument_classes(self) -> tuple[type[Any], type[Any], type[Any]]:
        """PE-Rank's model, data and training dataclasses (:mod:`.arguments`)."""
        from perank.families.pe_rank.training.arguments import DataArguments, ModelArguments, TrainingArguments

        return ModelArguments, DataArguments, TrainingArguments

    def validate(self, args: RunArguments) -> None:
        """The stage and ListMLE weighting are known names, and there is data to train on."""
        from perank.families.pe_rank.training.losses import WEIGHTINGS
        from perank.families.pe_rank.training.model import MODEL_TYPES

        if args.model.model_type not in MODEL_TYPES:
            raise InputError(f"--model_type {args.model.model_type!r}: choose one of {', '.join(MODEL_TYPES)}")
        if args.training.listmle_weighting not in WEIGHTINGS:
            raise InputError(f"--listmle_weighting {args.training.listmle_weighting!r}: choose {WEIGHTINGS}")
        if not args.data.data_path:
            raise InputError("--data_path is required")

    def restore_settings(self, args: RunArguments, checkpoint: str) -> None:
        """The checkpoint's projector, query-embedding and encoder settings win over the command line."""
        restore_settings(args.model, checkpoint)

    def build_model(self, args: RunArguments) -> Any:
        """The PE-Rank model with the right parts trainable, wrapped in the stage's loss module."""
        from perank.families.pe_rank.training.model import PERankTrainingModel
        from perank.training.lora import apply_lora

        model_args, training_args = args.model, args.training
        perank = self._init_from(args) if model_args.init_from else self._build_new(args)
        perank.encoder.requires_grad_(False)
        perank.projector.requires_grad_(bool(model_args.tune_mlp_adapter))
        if perank.relevance is not None:
            perank.relevance.requires_grad_(True)
        if hasattr(perank.llm, "peft_config"):
            pass  # --init_from a LoRA checkpoint: its adapter goes on training
        elif model_args.freeze_backbone:
            perank.llm.requires_grad_(False)
        elif model_args.lora_enable:
            perank.llm = apply_lora(perank.llm, model_args)
        else:
            perank.llm.requires_grad_(True)
        if not any(p.requires_grad for p in perank.parameters()):
            raise InputError("nothing to train: pass --tune_mlp_adapter and/or leave the backbone unfrozen")
        return PERankTrainingModel(
            perank,
            model_args.model_type,
            use_without_content=args.data.use_embedding_without_content,
            use_with_content=args.data.use_embedding_with_content,
            loss1_weight=training_args.loss1_weight,
            loss2_weight=training_args.loss2_weight,
            kl_loss_weight=training_args.kl_loss_weight,
            listmle_weighting=training_args.listmle_weighting,
            cache_embeddings=training_args.cache_embeddings,
        )

    def _init_from(self, args: RunArguments) -> Any:
        """The ``--init_from`` checkpoint, its LoRA adapter trainable, with ``--relevance_feature`` added."""
        from perank.families.pe_rank.model import PERankModel

        model_args = args.model
        source = model_args.init_from
        if model_args.pretrain_mlp_adapter:
            raise InputError("--init_from and --pretrain_mlp_adapter both set the projector: pass one")
        if model_args.freeze_backbone:
            raise InputError("--init_from continues the checkpoint's LLM weights: drop --freeze_backbone")
        try:
            perank = PERankModel.from_pretrained(
                source,
                dtype=_training_dtype(args.training),
                attn_implementation=model_args.attn_implementation,
                trainable_lora=True,
            )
        except FileNotFoundError as exc:
            raise InputError(f"--init_from {source}: {exc}") from exc
        restore_settings(model_args, source, keep=("relevance_feature",))
        have = perank.config.relevance_feature
        if have != "none" and have != model_args.relevance_feature:
            raise InputError(f"--init_from {source} has relevance_feature {have!r}: pass the same")
        perank.set_relevance_feature(model_args.relevance_feature)
        return perank

    def _build_new(self, args: RunArguments) -> Any:
        """A new model around the base LLM and encoder (with a stage-1 projector when one is given), shaped by
        the :class:`~perank.families.pe_rank.settings.PERankSettings` that ``ModelArguments`` inherits (the same
        settings ``perank.cli.assemble`` builds from)."""
        model_args, training_args = args.model, args.training
        perank = model_args.build_model(
            model_args.model_name_or_path,
            model_args.encoder_name,
            device="cpu",
            dtype=_training_dtype(training_args),
            attn_implementation=model_args.attn_implementation,
            trust_remote_code=model_args.trust_remote_code,
            seed=training_args.seed,
        )
        if model_args.pretrain_mlp_adapter:
            load_projector_weights(perank.projector, model_args.pretrain_mlp_adapter)
        return perank

    def build_dataset(self, args: RunArguments, model: Any) -> tuple[Any, Any]:
        """Stage 1: alignment rows; stage 2: ranked windows (tokenised with the model's own tokenizer)."""
        from perank.families.pe_rank.training.data import (
            AlignmentCollator,
            AlignmentDataset,
            RankCollator,
            RankDataset,
        )

        tokenizer = model.perank.tokenizer
        data_args, max_length = args.data, args.training.model_max_length
        if args.model.model_type == "causal_lm":
            ds = AlignmentDataset(data_args.data_path, tokenizer, max_length)
            return ds, AlignmentCollator(tokenizer.pad_token_id)
        ds = RankDataset(
            data_args.data_path,
            tokenizer,
            max_length,
            use_without_content=data_args.use_embedding_without_content,
            use_with_content=data_args.use_embedding_with_content,
            query_embedding=args.model.query_embedding,
            query_text=args.model.query_text,
        )
        return ds, RankCollator(tokenizer.pad_token_id)

    def build_trainer(self, args: RunArguments, model: Any, dataset: Any, collator: Any) -> Any:
        """:class:`PERankTrainer` (projector lr group, perank checkpoints), after preloading encoder outputs."""
        from perank.families.pe_rank.training.trainer import PERankTrainer

        if args.training.embedding_cache:
            count = model.load_embedding_cache(args.training.embedding_cache)
            logger.info("preloaded %d encoder embeddings from %s", count, args.training.embedding_cache)
        return PERankTrainer(model=model, args=args.training, train_dataset=dataset, data_collator=collator)
