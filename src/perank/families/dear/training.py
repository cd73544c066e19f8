"""``--family listwise-sft``: DeAR-style supervised fine-tuning of a causal LM to write teacher rankings.

Each training row is one window of a query's passages with a teacher order: the PE-Rank stage-2 rows that
``perank build-rank-data`` writes (``query``, ``ranking``, ``extra_texts``; their PE-Rank messages are not
read), so one teacher file serves both families. A row becomes the ``dear`` prompt of the chosen variant
(``--prompt``, default ``repo``: chat messages, ids from 1) followed by the teacher's answer ``[3] > [1] > ...``,
and the next-token loss covers the answer only (:func:`perank.training.chat.masked_labels`): with a chat
template, the last assistant turn including its end-of-turn token (the repository's fixed acknowledgement turns
are context, not targets); with the plain ``card`` prompt, the answer and an end-of-sequence token. Passages are
shown exactly as ``dear`` shows them at inference (the variant's cut, then fitted to ``--model_max_length`` by
:mod:`perank.families.dear.window_budget`), so training and decoding read the same prompt.

LoRA is on by default with the model card's settings (r 16, alpha 32, dropout 0.05, attention and MLP
projections; the card's lr is 1e-5, its repository's script 1e-4). The saved folder (``output_dir`` and each
``checkpoint-*``) is a PEFT adapter with the tokenizer and ``dear_prompt.json`` beside it, so
``dear -o model_path=DIR`` loads it with the variant it was trained on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import Trainer

from perank.families.dear.prompts import PROMPTS, answer, card_prompt, cut_passage, is_chat, repo_messages
from perank.families.dear.reranker import SETTINGS_FILE
from perank.families.dear.window_budget import count_tokens, fit_passages
from perank.ranking.prompting import strip_tokens
from perank.training.arguments import BackboneArguments, LoraArguments
from perank.training.arguments import TrainingArguments as BaseTrainingArguments
from perank.training.chat import IGNORE_INDEX, masked_labels, render_segments, tokenize_segments
from perank.training.jsonl import RowErrors, read_jsonl
from perank.training.runner import RunArguments, TrainingRunner
from perank.types import InputError

logger = logging.getLogger("perank.train")

#: tokens kept free beside the answer for the template's end-of-turn and end-of-sequence tokens
_ANSWER_MARGIN = 8


@dataclass
class ModelArguments(BackboneArguments, LoraArguments):
    """The causal LM to fine-tune; LoRA on by default with the DeAR card's settings."""

    model_name_or_path: str = field(default="smollm2", metadata={"help": "base causal LM (hub id, path or alias)"})
    lora_enable: bool = field(default=True, metadata={"help": "train LoRA adapters (False: the full LLM)"})
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05


@dataclass
class DataArguments:
    """The teacher rows and the prompt variant they are rendered in."""

    data_path: str = field(default="", metadata={"help": "rank rows (perank build-rank-data): query, ranking"})
    prompt: str = field(default="repo", metadata={"help": "dear prompt variant: card, repo or repo-cot"})
    max_passage_tokens: int | None = field(default=None, metadata={"help": "cap per passage, in tokens"})


@dataclass
class TrainingArguments(BaseTrainingArguments):
    """The shared training flags plus the sequence budget (the card trains at 2048 tokens)."""

    model_max_length: int = field(default=2048, metadata={"help": "prompt + answer tokens; passages are cut to fit"})

    def __post_init__(self) -> None:
        # a PEFT model's forward takes **kwargs: the Trainer must not guess which batch keys it uses
        self.remove_unused_columns = False
        super().__post_init__()


def read_window(obj: Any) -> tuple[str, list[str], list[int]]:
    """``(query, passages in input order, ranking)`` of one rank row; ValueError saying what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    query = obj.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ValueError("'query' must be a non-empty string")
    ranking = obj.get("ranking")
    if not isinstance(ranking, list) or not ranking or not all(type(r) is int for r in ranking):
        raise ValueError("'ranking' must be a non-empty list of integers")
    n = len(ranking)
    if sorted(ranking) != list(range(n)):
        raise ValueError(f"'ranking' is not a permutation of 0..{n - 1}: {ranking}")
    texts = obj.get("extra_texts")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts) or len(texts) < n:
        raise ValueError(f"'extra_texts' must be a list of at least {n} strings (the window's passages first)")
    return query, texts[:n], ranking


def encode_window(
    tokenizer: Any,
    prompt: str,
    query: str,
    passages: list[str],
    ranking: list[int],
    max_length: int,
    max_passage_tokens: int | None = None,
) -> tuple[list[int], list[int]]:
    """Token ids and labels (the answer only) of one window in variant ``prompt``, within ``max_length``."""
    specials = tokenizer.all_special_tokens
    query = strip_tokens(query, specials)
    passages = [cut_passage(prompt, strip_tokens(p, specials)) for p in passages]
    target = answer(prompt, ranking)
    room = max_length - count_tokens(tokenizer, target) - _ANSWER_MARGIN

    def measure(texts: list[str]) -> int:
        if is_chat(prompt):
            rendered = tokenizer.apply_chat_template(
                repo_messages(prompt, query, texts), tokenize=False, add_generation_prompt=True
            )
            return count_tokens(tokenizer, rendered)
        return len(tokenizer(card_prompt(query, texts))["input_ids"])

    passages, _ = fit_passages(tokenizer, passages, measure, room, max_passage_tokens)
    if is_chat(prompt):
        msgs = repo_messages(prompt, query, passages) + [{"role": "assistant", "content": target}]
        pieces = render_segments(tokenizer, msgs)
        last = max(i for i, (_, is_target) in enumerate(pieces) if is_target)
        # the fixed acknowledgements ("Received passage [i].") are context: only the ranking is learnt
        ids, is_target = tokenize_segments(tokenizer, [(text, i == last) for i, (text, _) in enumerate(pieces)])
    else:
        prompt_ids = tokenizer(card_prompt(query, passages))["input_ids"]
        answer_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids, is_target = prompt_ids + answer_ids, [False] * len(prompt_ids) + [True] * len(answer_ids)
    if len(ids) > max_length:
        raise ValueError(f"{len(ids)} tokens after fitting, longer than --model_max_length {max_length}")
    return ids, masked_labels(ids, is_target)


class WindowDataset(Dataset):
    """Every row validated and tokenised up front; bad rows are reported together with file:line."""

    def __init__(
        self, path: str, tokenizer: Any, prompt: str, max_length: int, max_passage_tokens: int | None = None
    ) -> None:
        self.examples: list[tuple[list[int], list[int]]] = []
        errors = RowErrors(path)
        for lineno, obj in read_jsonl(path):
            try:
                query, passages, ranking = read_window(obj)
                self.examples.append(
                    encode_window(tokenizer, prompt, query, passages, ranking, max_length, max_passage_tokens)
                )
            except ValueError as exc:
                errors.add(lineno, str(exc))
        errors.raise_if_any()

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        ids, labels = self.examples[i]
        return {"input_ids": ids, "labels": labels}


@dataclass
class WindowCollator:
    """Right-pads ids (pad token), labels (ignored) and the attention mask."""

    pad_token_id: int

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)

        def pad(key: str, value: int) -> torch.Tensor:
            return torch.tensor([b[key] + [value] * (width - len(b[key])) for b in batch], dtype=torch.long)

        mask = [[1] * len(b["input_ids"]) + [0] * (width - len(b["input_ids"])) for b in batch]
        return {
            "input_ids": pad("input_ids", self.pad_token_id),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
            "labels": pad("labels", IGNORE_INDEX),
        }


class ListwiseSFTTrainer(Trainer):
    """A Trainer whose every save also records the prompt variant, for ``dear`` to read back."""

    def __init__(self, *args: Any, prompt: str, max_passage_tokens: int | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prompt = prompt
        self.max_passage_tokens = max_passage_tokens

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        super().save_model(output_dir, _internal_call)
        folder = Path(output_dir or self.args.output_dir)
        if self.args.should_save:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / SETTINGS_FILE).write_text(
                json.dumps({"prompt": self.prompt, "max_passage_tokens": self.max_passage_tokens}) + "\n",
                encoding="utf-8",
            )


def load_for_training(model_args: ModelArguments, training_args: TrainingArguments) -> tuple[Any, Any]:
    """The base LLM (fp32 unless bf16/fp16 training) and its tokenizer; a missing model is named."""
    from perank.backends.lm_loading import causal_lm_weights, load_tokenizer

    name = model_args.model_name_or_path
    dtype = torch.bfloat16 if training_args.bf16 else torch.float16 if training_args.fp16 else torch.float32
    remote = model_args.trust_remote_code
    try:
        tokenizer = load_tokenizer(name, trust_remote_code=remote)
    except OSError as exc:  # FileNotFoundError too: a packaged alias whose package is missing
        raise InputError(
            f"--model_name_or_path {name}: cannot load this causal LM ({str(exc).splitlines()[0]})"
        ) from exc
    try:
        llm = causal_lm_weights(
            name, dtype=dtype, attn=model_args.attn_implementation or "sdpa", trust_remote_code=remote
        )
    except InputError as exc:
        raise InputError(f"--model_name_or_path {exc}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return llm, tokenizer


class ListwiseSFTRunner(TrainingRunner):
    """Fine-tunes a causal LM (LoRA by default) to write teacher rankings in a ``dear`` prompt."""

    family = "listwise-sft"

    def argument_classes(self) -> tuple[type[Any], type[Any], type[Any]]:
        return ModelArguments, DataArguments, TrainingArguments

    def validate(self, args: RunArguments) -> None:
        """Data is given, the prompt variant is known, and the budgets are positive."""
        data = args.data
        if not data.data_path:
            raise InputError("--data_path is required (rank rows, e.g. from perank build-rank-data)")
        if data.prompt not in PROMPTS:
            raise InputError(f"--prompt {data.prompt!r}: choose one of {', '.join(PROMPTS)}")
        if data.max_passage_tokens is not None and data.max_passage_tokens < 1:
            raise InputError(f"--max_passage_tokens {data.max_passage_tokens}: must be at least 1")
        if args.training.model_max_length < 64:
            raise InputError(f"--model_max_length {args.training.model_max_length}: must be at least 64")
        if args.model.lora_enable and (args.model.lora_r < 1 or args.model.lora_alpha < 1):
            raise InputError("--lora_r and --lora_alpha must be at least 1")

    def build_model(self, args: RunArguments) -> Any:
        from transformers import set_seed

        from perank.training.lora import apply_lora

        set_seed(args.training.seed)  # the adapters' initialisation
        llm, self.tokenizer = load_for_training(args.model, args.training)
        if not args.model.lora_enable:
            return llm
        if args.training.gradient_checkpointing:
            llm.enable_input_require_grads()  # frozen embeddings: checkpointed blocks still need an input grad
        model = apply_lora(llm, args.model)
        name = args.model.model_name_or_path
        if not Path(name).exists():  # a hub id or packaged alias: portable, unlike the folder it resolved to
            for config in model.peft_config.values():
                config.base_model_name_or_path = name
        return model

    def build_dataset(self, args: RunArguments, model: Any) -> tuple[Any, Any]:
        dataset = WindowDataset(
            args.data.data_path,
            self.tokenizer,
            args.data.prompt,
            args.training.model_max_length,
            args.data.max_passage_tokens,
        )
        return dataset, WindowCollator(self.tokenizer.pad_token_id)

    def build_trainer(self, args: RunArguments, model: Any, dataset: Any, collator: Any) -> Any:
        return ListwiseSFTTrainer(
            model=model,
            args=args.training,
            train_dataset=dataset,
            data_collator=collator,
            processing_class=self.tokenizer,
            prompt=args.data.prompt,
            max_passage_tokens=args.data.max_passage_tokens,
        )
