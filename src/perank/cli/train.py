"""Train PE-Rank: stage 1 (``--model_type causal_lm``, projector alignment) or stage 2 (``rank_lm``).

The original commands (``deepspeed src/train.py --deepspeed scripts/zero2.json ...``, see scripts/train_s1.sh
and scripts/train_s2.sh) run unchanged; on a machine without a GPU the GPU-only settings are downgraded with
a warning (bf16 -> fp32, tf32 off, flash_attention_2 -> sdpa) rather than failing an hour into a job.
A run resumes from ``--resume_from_checkpoint`` or, by default, from the last ``checkpoint-*`` in
``output_dir`` (``--overwrite_output_dir`` starts afresh); the checkpoint's PE-Rank settings (projector
type, query-embedding token, encoder) override the command line so the restored weights fit.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import torch

from perank.types import InputError

logger = logging.getLogger("perank.train")


def _cuda_available() -> bool:
    return torch.cuda.is_available()


def downgrade_for_cpu(model_args: Any, training_args: Any) -> None:
    """Turn GPU-only settings off on CPU, loudly (bf16 -> fp32, tf32 off, flash_attention_2 -> sdpa)."""
    on_cpu = training_args.use_cpu or not _cuda_available()
    if not on_cpu:
        return
    if training_args.bf16 or training_args.fp16:
        logger.warning("bf16/fp16 requested on CPU: training in fp32 instead (bf16 is several times slower here)")
        training_args.bf16 = training_args.fp16 = False
    if training_args.tf32:
        logger.warning("tf32 requested on CPU: ignored (it is an Ampere GPU setting)")
        training_args.tf32 = None
    if model_args.attn_implementation == "flash_attention_2":
        logger.warning("flash_attention_2 needs a CUDA GPU: using sdpa instead")
        model_args.attn_implementation = "sdpa"


def find_resume_checkpoint(training_args: Any) -> str | None:
    """The checkpoint to resume from: the explicit flag, else the last ``checkpoint-*`` in output_dir."""
    from transformers.trainer_utils import get_last_checkpoint

    explicit = training_args.resume_from_checkpoint
    if explicit:
        if not Path(explicit).is_dir():
            raise InputError(f"--resume_from_checkpoint {explicit}: no such checkpoint folder")
        return str(explicit)
    out = Path(training_args.output_dir)
    if out.is_dir() and not training_args.overwrite_output_dir:
        last = get_last_checkpoint(str(out))
        if last:
            logger.info("resuming from %s (pass --overwrite_output_dir to start afresh)", last)
        return last
    return None


def restore_settings(model_args: Any, checkpoint: str) -> None:
    """Adopt the PE-Rank settings stored in a checkpoint, warning when the command line disagrees."""
    from perank.families.pe_rank.model import CONFIG_NAME

    cfg_file = Path(checkpoint) / CONFIG_NAME
    if not cfg_file.exists():
        return
    cfg = json.loads(cfg_file.read_text())
    for arg, key in (
        ("projector_type", "projector_type"),
        ("query_embedding", "query_embedding"),
        ("query_embedding_position", "query_embedding_position"),
        ("query_text", "query_text"),
        ("encoder_name", "encoder_name"),
        ("encoder_pooling", "encoder_pooling"),
        ("encoder_max_length", "encoder_max_length"),
    ):
        if key in cfg and getattr(model_args, arg) != cfg[key]:
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


def build_model(model_args: Any, data_args: Any, training_args: Any) -> Any:
    """The PE-Rank model with the right parts trainable, wrapped in the stage's loss module."""
    from perank.families.pe_rank.model import PERankModel
    from perank.families.pe_rank.training.model import PERankTrainingModel

    perank = PERankModel.build(
        model_args.model_name_or_path,
        model_args.encoder_name,
        encoder_pooling=model_args.encoder_pooling,
        encoder_max_length=model_args.encoder_max_length,
        projector_type=model_args.projector_type,
        query_embedding=model_args.query_embedding,
        query_embedding_position=model_args.query_embedding_position,
        query_text=model_args.query_text,
        device="cpu",
        dtype=torch.bfloat16 if training_args.bf16 else torch.float16 if training_args.fp16 else torch.float32,
        attn_implementation=model_args.attn_implementation,
        trust_remote_code=model_args.trust_remote_code,
        seed=training_args.seed,
    )
    if model_args.pretrain_mlp_adapter:
        load_projector_weights(perank.projector, model_args.pretrain_mlp_adapter)
    perank.encoder.requires_grad_(False)
    perank.projector.requires_grad_(bool(model_args.tune_mlp_adapter))
    if model_args.freeze_backbone:
        perank.llm.requires_grad_(False)
    elif model_args.lora_enable:
        from peft import LoraConfig, get_peft_model

        targets: Any = model_args.lora_target_modules
        targets = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
        perank.llm = get_peft_model(
            perank.llm,
            LoraConfig(
                r=model_args.lora_r,
                lora_alpha=model_args.lora_alpha,
                lora_dropout=model_args.lora_dropout,
                target_modules=targets,
                task_type="CAUSAL_LM",
            ),
        )
    else:
        perank.llm.requires_grad_(True)
    if not any(p.requires_grad for p in perank.parameters()):
        raise InputError("nothing to train: pass --tune_mlp_adapter and/or leave the backbone unfrozen")
    return PERankTrainingModel(
        perank,
        model_args.model_type,
        use_without_content=data_args.use_embedding_without_content,
        use_with_content=data_args.use_embedding_with_content,
        loss1_weight=training_args.loss1_weight,
        loss2_weight=training_args.loss2_weight,
        kl_loss_weight=training_args.kl_loss_weight,
        listmle_weighting=training_args.listmle_weighting,
        cache_embeddings=training_args.cache_embeddings,
    )


def build_dataset(model_args: Any, data_args: Any, training_args: Any, tokenizer: Any) -> tuple[Any, Any]:
    """Dataset and collator for the stage (all rows validated here, before any training step)."""
    from perank.families.pe_rank.training.data import AlignmentCollator, AlignmentDataset, RankCollator, RankDataset

    if not data_args.data_path:
        raise InputError("--data_path is required")
    if model_args.model_type == "causal_lm":
        ds = AlignmentDataset(data_args.data_path, tokenizer, training_args.model_max_length)
        return ds, AlignmentCollator(tokenizer.pad_token_id)
    ds = RankDataset(
        data_args.data_path,
        tokenizer,
        training_args.model_max_length,
        use_without_content=data_args.use_embedding_without_content,
        use_with_content=data_args.use_embedding_with_content,
        query_embedding=model_args.query_embedding,
        query_text=model_args.query_text,
    )
    return ds, RankCollator(tokenizer.pad_token_id)


def parse(argv: list[str] | None = None) -> tuple[Any, Any, Any]:
    from transformers import HfArgumentParser

    from perank.families.pe_rank.training.arguments import DataArguments, ModelArguments, TrainingArguments

    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    return model_args, data_args, training_args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stderr)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        model_args, data_args, training_args = parse(argv)
        from perank.families.pe_rank.training.losses import WEIGHTINGS
        from perank.families.pe_rank.training.model import MODEL_TYPES

        if model_args.model_type not in MODEL_TYPES:
            raise InputError(f"--model_type {model_args.model_type!r}: choose one of {', '.join(MODEL_TYPES)}")
        if training_args.listmle_weighting not in WEIGHTINGS:
            raise InputError(f"--listmle_weighting {training_args.listmle_weighting!r}: choose {WEIGHTINGS}")
        downgrade_for_cpu(model_args, training_args)
        checkpoint = find_resume_checkpoint(training_args)
        if checkpoint:
            restore_settings(model_args, checkpoint)
        model = build_model(model_args, data_args, training_args)
        tokenizer = model.perank.tokenizer
        dataset, collator = build_dataset(model_args, data_args, training_args, tokenizer)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if training_args.embedding_cache:
        count = model.load_embedding_cache(training_args.embedding_cache)
        logger.info("preloaded %d encoder embeddings from %s", count, training_args.embedding_cache)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info(
        "%d training rows; %.2fM trainable parameters; world size %d",
        len(dataset),
        n_train / 1e6,
        training_args.world_size,
    )

    from perank.families.pe_rank.training.trainer import PERankTrainer

    trainer = PERankTrainer(model=model, args=training_args, train_dataset=dataset, data_collator=collator)
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_state()
    trainer.save_model(training_args.output_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
