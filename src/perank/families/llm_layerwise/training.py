"""``--family llm-layerwise``: FlagEmbedding's layerwise reranker fine-tuning (bge-reranker-v2-minicpm-layerwise) on
the shared pair-group path, on any Llama-style causal LM (the packaged SmolLM2-135M by default).

FlagEmbedding (``finetune/reranker/decoder_only/layerwise``, and the ``research/llm_reranker`` code the published
model came from) turns a raw LM into a layerwise reranker: every layer from ``start_layer`` (8 of MiniCPM's 40) to
the last gets a ``Linear(hidden, 1, bias=False)`` head, each started as the LM head's row for 'Yes'; a pair's score
after layer L is that head on the final-normed hidden state after L layers, at the last token of
``A: q / B: p / prompt``. Training reads every head on every pair and sums, over the heads, the group
cross-entropy (positive first); with teacher scores every head is also distilled from the teacher, and without,
each earlier head learns the last one's (detached) distribution, so a cut-off model ranks like the whole one.
LoRA trains the LM (r32 / alpha64 on q/k/v/o, its example recipe) and the heads train fully.

Here the same, on the shared pieces: query groups and their optional teacher scores
(:mod:`perank.training.pair_group_runner`: ``--distill_weight`` etc.), the reranker's token ids
(:mod:`perank.training.llm_pairs`), the heads on the LoRA-wrapped LM's decoder
(:class:`perank.backends.layer_heads.LayerHeads`, the module inference runs, so the reranker scores what was
trained) and the layered loss (:func:`perank.training.group_loss.layered_group_loss`; the teacher's KL uses the
shared temperatures, FlagEmbedding's is at 1). At step 0 the last layer's head is the base LM's 'Yes' logit, the
untrained ``llm-yes-no`` score.

Every save (``output_dir`` and each ``checkpoint-*``) is the small folder :mod:`perank.backends.layer_heads`
describes (adapter, heads, ``layer_heads_config.json`` with the base, the layers and the prompt, tokenizer), which
``--reranker llm-layerwise --model-path DIR`` loads with the published cutoff semantics (``cutoff_layer``,
``compute_score(..., cutoff_layers=[...])``); checkpoints also hold ``model.safetensors`` with the trainable tensors
only, which a resumed run reloads.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from perank.backends.layer_heads import HEADS_CONFIG, HeadsConfig, LayerHeads, read_heads_config, save_layer_heads
from perank.training.llm_pairs import (
    DecoderPairCollator,
    LLMPairDataArguments,
    LLMPairModelArguments,
    check_prompt,
    load_llm_for_training,
)
from perank.training.pair_group_runner import GroupTrainer, PairGroupRunner, PairGroupTrainingArguments
from perank.training.runner import RunArguments
from perank.training.saving import gathered_for_save
from perank.types import InputError

logger = logging.getLogger("perank.train")

#: the Trainer's resume file in a ``checkpoint-*`` folder: the trainable tensors only
TRAINER_WEIGHTS = "model.safetensors"


@dataclass
class ModelArguments(LLMPairModelArguments):
    """The causal LM, its LoRA (FlagEmbedding's layerwise example: r32 / alpha64 on q/k/v/o) and the first layer
    with a head."""

    start_layer: int = field(
        default=8, metadata={"help": "the first layer with a score head (FlagEmbedding's 8); every later one has one"}
    )


@dataclass
class DataArguments(LLMPairDataArguments):
    """FlagEmbedding-style query groups, how they are cut (the 'A: '/'B: ' prefixes count), and the prompt."""


@dataclass
class TrainingArguments(PairGroupTrainingArguments):
    """The shared training and distillation flags; a class of this module's own, so a checkpoint's pickled
    ``training_args.bin`` names the family it came from."""


def yes_token(tokenizer: Any) -> int:
    """FlagEmbedding's ``tokenizer('Yes', add_special_tokens=False)['input_ids'][-1]``: the row the heads start at."""
    ids = tokenizer("Yes", add_special_tokens=False)["input_ids"]
    if not ids:
        raise InputError(f"{getattr(tokenizer, 'name_or_path', 'tokenizer')}: encodes 'Yes' as no token")
    return int(ids[-1])


def yes_row_heads(llm: nn.Module, token: int, count: int) -> nn.ModuleList:
    """``count`` heads, each started as the LM head's row for ``token`` (FlagEmbedding's raw-model start)."""
    output = llm.get_output_embeddings()
    if output is None or not hasattr(output, "weight"):
        raise InputError(f"{type(llm).__name__}: no output embeddings to start the layer heads from")
    row = output.weight[token].detach().float()
    heads = nn.ModuleList(nn.Linear(row.shape[0], 1, bias=False) for _ in range(count))
    with torch.no_grad():
        for head in heads:
            head.weight.copy_(row.unsqueeze(0))
    return heads


class LayerwiseTrainingModel(nn.Module):
    """``adapter`` (the peft-wrapped causal LM, for saving) and ``scorer`` (the heads on its decoder); called on a
    batch, every head's score of every row (``[rows, heads]``, the last layer last)."""

    # read by the Trainer after a resumed run loads the checkpoint's trainable tensors (every frozen key is
    # "missing" then): None says no key is left out on purpose, so it only warns
    _keys_to_ignore_on_save: list[str] | None = None

    def __init__(self, adapter: nn.Module, scorer: LayerHeads) -> None:
        super().__init__()
        self.adapter = adapter
        self.scorer = scorer

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.scorer(input_ids, attention_mask)


def build_training_model(args: ModelArguments, seed: int = 0) -> tuple[LayerwiseTrainingModel, Any]:
    """``(model, tokenizer)``: the LM with LoRA and a head per layer from ``--start_layer`` on, each at the 'Yes'
    row; only the adapters and the heads train. The adapters' random start is drawn from ``seed``, whatever ran
    before, so a run and its resumed twin start alike."""
    torch.manual_seed(seed)
    adapter, tokenizer = load_llm_for_training(args)
    llm = adapter.get_base_model()
    decoder = llm.get_decoder()
    count = len(getattr(decoder, "layers", ()))
    if not 1 <= args.start_layer <= count:
        raise InputError(f"--start_layer {args.start_layer}: must be between 1 and the model's {count} layers")
    heads = yes_row_heads(llm, yes_token(tokenizer), count - args.start_layer + 1)
    return LayerwiseTrainingModel(adapter, LayerHeads(decoder, heads, args.start_layer)).train(), tokenizer


class LayerwiseTrainer(GroupTrainer):
    """The group Trainer whose saves are the small layer-heads folder (only public methods overridden)."""

    def __init__(self, *args: Any, heads_config: HeadsConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heads_config = heads_config

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """The small folder, and inside Trainer checkpoints the trainable tensors for resuming."""
        from safetensors.torch import save_file

        output_dir = output_dir or self.args.output_dir
        module: LayerwiseTrainingModel = self.model
        with gathered_for_save(self):
            if not self.args.should_save:
                return
            save_layer_heads(
                output_dir,
                adapter=module.adapter,
                heads=module.scorer,
                tokenizer=self.processing_class,
                config=self.heads_config,
            )
            if _internal_call:
                trainable = {n: p.detach().cpu().contiguous() for n, p in module.named_parameters() if p.requires_grad}
                save_file(trainable, os.path.join(output_dir, TRAINER_WEIGHTS))
            torch.save(self.args, os.path.join(output_dir, "training_args.bin"))


class LLMLayerwiseRunner(PairGroupRunner):
    """Layerwise fine-tuning of a causal LM: LoRA and a head per layer, every head trained (module docstring)."""

    family = "llm-layerwise"
    arguments = (ModelArguments, DataArguments, TrainingArguments)
    data_source = "recipes/build_pair_mix.sh"
    trainer_class = LayerwiseTrainer

    def validate(self, args: RunArguments) -> None:
        """The shared checks, then the prompt, LoRA and the first layer (its upper bound once the model is read)."""
        super().validate(args)
        check_prompt(args.data.prompt)
        if not args.model.lora_enable:
            raise InputError("--lora_enable False: llm-layerwise trains LoRA adapters and the heads; leave it out")
        if args.model.start_layer < 1:
            raise InputError(f"--start_layer {args.model.start_layer}: must be at least 1")
        training = args.training
        if training.gradient_checkpointing or training.activation_checkpointing:
            raise InputError("--gradient_checkpointing: not supported by --family llm-layerwise; leave it out")

    def restore_settings(self, args: RunArguments, checkpoint: str) -> None:
        """The checkpoint's first layer and prompt win over the command line (its heads and scores are for them)."""
        folder = Path(checkpoint)
        if not (folder / HEADS_CONFIG).is_file():
            return
        saved = read_heads_config(folder)
        for owner, flag, value in ((args.model, "start_layer", saved.start_layer), (args.data, "prompt", saved.prompt)):
            if getattr(owner, flag) != value:
                logger.warning(
                    "--%s %s: the checkpoint %s was trained with %s; using it",
                    flag,
                    json.dumps(getattr(owner, flag)),
                    folder,
                    json.dumps(value),
                )
                setattr(owner, flag, value)

    def load(self, args: RunArguments) -> tuple[Any, Any]:
        """The LM with LoRA and the heads, and its tokenizer."""
        model, tokenizer = build_training_model(args.model, args.training.seed)
        self.heads_config = HeadsConfig(
            base=args.model.model_name_or_path,
            start_layer=model.scorer.config.start_layer,
            num_hidden_layers=model.scorer.config.num_hidden_layers,
            prompt=args.data.prompt,
        )
        return model, tokenizer

    def build_collator(self, args: RunArguments) -> DecoderPairCollator:
        return DecoderPairCollator.for_run(self.tokenizer, args.data)

    def pair_scores(self, model: Any, inputs: dict[str, Any]) -> tuple[Tensor, Any]:
        """Every head's score of each row, ``[rows, heads]``, the last layer's last."""
        return model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]), None

    def trainer_options(self, args: RunArguments) -> dict[str, Any]:
        return {"heads_config": self.heads_config}
