"""Training data for both PE-Rank stages: reading, up-front validation, tokenisation and collation.

Every row is validated and tokenised before training starts, and every problem is reported with the file
and line it came from (up to 20 at once), so a bad row can never be trained on silently or surface hours
into a run. Schemas (see docs/training.md):

- stage 1 (``causal_lm``, wiki2m-style): ``{"messages": [chat turns], "extra_texts": [passage, ...]}`` with one
  ``<PLACEHOLDER>`` in the user turn(s) per extra text; the loss covers the assistant turns only.
- stage 2 (``rank_lm``): ``{"messages_w_content", "messages_wo_content", "ranking", "extra_texts", "query"}``;
  the assistant turn is ``<RANK>`` * n, ``ranking[k]`` is the input index of the passage at rank k and
  ``extra_texts`` holds 2n texts (the n candidates in input order, then the same n in ranked order).

Reading with file:line errors (:mod:`perank.training.jsonl`) and chat rendering with assistant-target
masking (:mod:`perank.training.chat`) are shared with the other families; what is PE-Rank's is the schemas
and the ``<PLACEHOLDER>``/``<RANK>`` checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from perank.families.pe_rank.prompts import PLACEHOLDER, RANK_TOKEN
from perank.training.chat import IGNORE_INDEX, check_messages, masked_labels, render_segments, tokenize_segments
from perank.training.jsonl import RowErrors, read_jsonl
from perank.training.rank_rows import check_ranking
from perank.types import InputError

# ------------------------------------------------------------------------------------------------ stage 1


@dataclass
class AlignmentExample:
    input_ids: list[int]
    labels: list[int]
    texts: list[str]


class AlignmentDataset(Dataset):
    """Stage 1: reconstruct a passage from its single embedding token (next-token CE on the assistant turn).

    The prompt must fit in ``max_length``; the assistant target is truncated to fit (reconstructing the
    start of a long passage is still alignment signal). A prompt that does not fit is an error.
    """

    def __init__(self, path: str | Path, tokenizer: Any, max_length: int, query_embedding: bool = False) -> None:
        placeholder_id = tokenizer.convert_tokens_to_ids(PLACEHOLDER)
        self.examples: list[AlignmentExample] = []
        errors = RowErrors(path)
        for lineno, obj in read_jsonl(path):
            try:
                if not isinstance(obj, dict):
                    raise ValueError("expected a JSON object")
                msgs = check_messages(obj, "messages")
                texts = obj.get("extra_texts")
                if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                    raise ValueError("'extra_texts' must be a list of strings")
                ids, target = tokenize_segments(tokenizer, render_segments(tokenizer, msgs))
                n_ph = sum(1 for t in ids if t == placeholder_id)
                if n_ph != len(texts):
                    raise ValueError(f"{n_ph} {PLACEHOLDER} token(s) but {len(texts)} extra_texts")
                first_target = target.index(True) if True in target else len(ids)
                if first_target >= max_length:
                    raise ValueError(f"prompt is {first_target} tokens, longer than model_max_length {max_length}")
                ids, target = ids[:max_length], target[:max_length]
                labels = masked_labels(ids, target)
                self.examples.append(AlignmentExample(ids, labels, list(texts)))
            except ValueError as exc:
                errors.add(lineno, str(exc))
        errors.raise_if_any()

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ex = self.examples[i]
        return {"input_ids": ex.input_ids, "labels": ex.labels, "texts": ex.texts}


# ------------------------------------------------------------------------------------------------ stage 2


@dataclass
class RankExample:
    ids_wo: list[int] | None
    ids_w: list[int] | None
    ranking: list[int]
    candidates: list[str]
    query: str


class RankDataset(Dataset):
    """Stage 2: windows of n passages with a teacher ranking, in one or both prompt variants.

    Checked per row: required fields, ``ranking`` a permutation, ``extra_texts`` = 2n consistent texts,
    n ``<RANK>`` tokens and n (+1 with a query-embedding token) ``<PLACEHOLDER>`` tokens after tokenising,
    no query text in the prompts when ``query_text`` is False (rows built for the other prompt variant),
    and the whole conversation within ``max_length`` (it is never truncated: a cut ranking is meaningless).
    """

    def __init__(
        self,
        path: str | Path,
        tokenizer: Any,
        max_length: int,
        use_without_content: bool = True,
        use_with_content: bool = False,
        query_embedding: bool = False,
        query_text: bool = True,
    ) -> None:
        if not query_text and not query_embedding:
            raise InputError("--query_text False needs --query_embedding (the query would be absent from the prompt)")
        if not (use_without_content or use_with_content):
            raise InputError("stage 2 needs --use_embedding_without_content and/or --use_embedding_with_content")
        placeholder_id = tokenizer.convert_tokens_to_ids(PLACEHOLDER)
        rank_id = tokenizer.convert_tokens_to_ids(RANK_TOKEN)
        self.examples: list[RankExample] = []
        errors = RowErrors(path)
        for lineno, obj in read_jsonl(path):
            try:
                if not isinstance(obj, dict):
                    raise ValueError("expected a JSON object")
                ranking, candidates = check_ranking(obj)
                n = len(ranking)
                query = obj.get("query", "")
                if query_embedding and (not isinstance(query, str) or not query.strip()):
                    raise ValueError("'query' is required with --query_embedding (its embedding is injected)")
                encoded: dict[str, list[int] | None] = {"messages_wo_content": None, "messages_w_content": None}
                for key, wanted in (
                    ("messages_wo_content", use_without_content),
                    ("messages_w_content", use_with_content),
                ):
                    if not wanted:
                        continue
                    msgs = check_messages(obj, key)
                    if not query_text and query.strip() and any(query.strip() in m["content"] for m in msgs):
                        raise ValueError(
                            f"'{key}' shows the query's text but --query_text is False "
                            "(build the data with --no-query-text to match)"
                        )
                    ids, _ = tokenize_segments(tokenizer, render_segments(tokenizer, msgs))
                    n_ph = sum(1 for t in ids if t == placeholder_id)
                    n_rank = sum(1 for t in ids if t == rank_id)
                    want_ph = n + int(query_embedding)
                    if n_ph != want_ph:
                        hint = " (build the data with --query-embedding to match)" if query_embedding else ""
                        raise ValueError(f"'{key}' has {n_ph} {PLACEHOLDER} tokens, expected {want_ph}{hint}")
                    if n_rank != n:
                        raise ValueError(f"'{key}' has {n_rank} {RANK_TOKEN} tokens, expected {n}")
                    if ids.index(rank_id) == 0:
                        raise ValueError(f"'{key}' starts with {RANK_TOKEN}; nothing predicts the first rank")
                    if len(ids) > max_length:
                        raise ValueError(f"'{key}' is {len(ids)} tokens, longer than model_max_length {max_length}")
                    encoded[key] = ids
                self.examples.append(
                    RankExample(
                        encoded["messages_wo_content"], encoded["messages_w_content"], ranking, candidates, query
                    )
                )
            except ValueError as exc:
                errors.add(lineno, str(exc))
        errors.raise_if_any()

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ex = self.examples[i]
        return {
            "ids_wo": ex.ids_wo,
            "ids_w": ex.ids_w,
            "ranking": ex.ranking,
            "candidates": ex.candidates,
            "query": ex.query,
        }


# ------------------------------------------------------------------------------------------------ collators


def pad(seqs: list[list[int]], value: int) -> Tensor:
    """Right-pad integer sequences into a ``[B, T]`` tensor."""
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs], dtype=torch.long)


def _mask(seqs: list[list[int]]) -> Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], dtype=torch.long)


@dataclass
class AlignmentCollator:
    """Pads stage-1 examples; passage texts travel as a list (the model embeds them in its forward)."""

    pad_token_id: int

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        ids = [b["input_ids"] for b in batch]
        return {
            "input_ids": pad(ids, self.pad_token_id),
            "attention_mask": _mask(ids),
            "labels": pad([b["labels"] for b in batch], IGNORE_INDEX),
            "texts": [b["texts"] for b in batch],
        }


@dataclass
class RankCollator:
    """Pads stage-2 examples per prompt variant; rankings, candidate texts and queries travel as lists."""

    pad_token_id: int

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ranking": [torch.tensor(b["ranking"], dtype=torch.long) for b in batch],
            "candidates": [b["candidates"] for b in batch],
            "queries": [b["query"] for b in batch],
        }
        for key, name in (("ids_wo", "wo"), ("ids_w", "w")):
            if batch[0][key] is not None:
                seqs = [b[key] for b in batch]
                out[f"input_ids_{name}"] = pad(seqs, self.pad_token_id)
                out[f"attention_mask_{name}"] = _mask(seqs)
        return out
