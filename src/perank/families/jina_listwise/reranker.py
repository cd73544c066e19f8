"""The ``jina-listwise`` reranker: jina-reranker-v3's "last but not late interaction" over whole candidate lists.

jina-reranker-v3 (arXiv 2509.25085; weights ``jinaai/jina-reranker-v3``, Qwen3-0.6B) writes the query and a block
of up to 125 candidates into one prompt (:mod:`.prompts`), runs the decoder once, and scores each candidate by the
cosine between its marker's projected hidden state and the query marker's (:mod:`.model`). What the published
``JinaForRanking.rerank`` does, and this reranker does likewise (:mod:`.blocks`): the query cut to 512 tokens and
each candidate to 2,048 (the head decoded and re-tokenized in the prompt); candidates in their first-stage order
split into blocks of at most ``block_size`` and at most about ``max_length - 2 * query length`` tokens; one
forward pass per block; the blocks' query vectors merged by their best in-block score and every candidate scored
against that merged vector. Scores are cosines in [-1, 1].

Differences that do not change a score beyond float noise: prompts of several blocks (of one query or of
several) may share a forward pass (``batch_size``, right-padded), and the merge runs in float64. The published
code has no way to rank a list of 0 candidates; here it gives an empty result.
"""

from __future__ import annotations

from typing import Any

import torch

from perank.backends.padding import pad_rows
from perank.backends.resolve import local_snapshot
from perank.backends.runtime import default_dtype, eval_mode, parse_dtype, resolve_device
from perank.families.jina_listwise.blocks import FittedText, PromptLimits, query_prompts
from perank.families.jina_listwise.model import BlockOutput, load_jina_listwise, merge_blocks
from perank.families.jina_listwise.trained import is_trained_folder, load_trained, trained_settings
from perank.ranking.budgets import TextBudgets, TokenBudget
from perank.ranking.pointwise import Pairs, PairScores, PointwiseReranker, length_sorted_batches
from perank.types import InputError

DEFAULT_MODEL = "jinaai/jina-reranker-v3"
#: the published ``rerank``'s constants
BLOCK_SIZE, MAX_DOC_LENGTH, MAX_QUERY_LENGTH = 125, 2048, 512


def _pick(given: int | None, recorded: dict[str, int], key: str, default: int) -> Any:
    """An option's value: as given, else as a trained folder recorded it, else ``default``."""
    return given if given is not None else recorded.get(key, default)


def _positive(option: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"option {option}={value!r}: must be a positive integer")
    return value


class JinaListwiseReranker(PointwiseReranker):
    """Ranks each query's candidates with jina-reranker-v3's listwise prompt (see the module docstring).

    Options: ``model_path`` (a folder in the published layout or a hub id; default ``jinaai/jina-reranker-v3``),
    ``block_size`` (candidates per prompt, 125), ``max_doc_length`` (tokens per candidate, 2,048),
    ``max_query_length`` (512), ``max_length`` (the context the blocks fill; default the tokenizer's
    ``model_max_length``, 131,072), ``instruction`` (an ``<instruct>`` block in every prompt; the published
    ``rerank`` gives none), ``batch_size`` (prompts per forward pass, 1 as published), ``device``, ``dtype``
    (default bf16 on a GPU, float32 on CPU). A folder trained here (:mod:`.trained`) records the four length and
    block options training used, which are then its defaults (an option given still wins). Stats per query:
    ``llm_calls`` (blocks), ``tokens_processed`` (prompt tokens), ``truncated_passages``.
    """

    name = "jina-listwise"
    scores_each_pair = False

    def __init__(
        self,
        model_path: str = DEFAULT_MODEL,
        block_size: int | None = None,
        max_doc_length: int | None = None,
        max_query_length: int | None = None,
        max_length: int | None = None,
        instruction: str | None = None,
        batch_size: int = 1,
        device: str | None = None,
        dtype: str | None = None,
    ) -> None:
        self.batch_size = _positive("batch_size", batch_size)
        if instruction is not None and not isinstance(instruction, str):
            raise InputError(f"option instruction={instruction!r}: must be a text")
        self.instruction = instruction or None
        self.model_path = model_path
        self.device = resolve_device(device)
        self.dtype = parse_dtype(dtype) or default_dtype(self.device)
        folder = local_snapshot(model_path)
        # an option given wins; else what a folder trained here recorded; else the published rerank's constants
        recorded = trained_settings(folder)
        self.block_size = _positive("block_size", _pick(block_size, recorded, "block_size", BLOCK_SIZE))
        self.max_doc_length = _positive(
            "max_doc_length", _pick(max_doc_length, recorded, "max_doc_length", MAX_DOC_LENGTH)
        )
        self.max_query_length = _positive(
            "max_query_length", _pick(max_query_length, recorded, "max_query_length", MAX_QUERY_LENGTH)
        )
        loader = load_trained if is_trained_folder(folder) else load_jina_listwise  # ours, or the published layout
        self.model, self.tokenizer = loader(folder, device=self.device, dtype=self.dtype)
        context = _pick(max_length, recorded, "max_length", int(self.tokenizer.model_max_length))
        self.max_length = _positive("max_length", context)

    def describe(self) -> dict[str, Any]:
        return {
            "reranker": self.name,
            "model_path": self.model_path,
            "block_size": self.block_size,
            "max_doc_length": self.max_doc_length,
            "max_query_length": self.max_query_length,
            "max_length": self.max_length,
            "instruction": self.instruction,
            "dtype": str(self.dtype).removeprefix("torch."),
            "batch_size": self.batch_size,
        }

    def text_budgets(self) -> TextBudgets:
        """Query and passages are cut by the model's own rule (:func:`.blocks.fit_text`): the core only pre-cuts."""
        return TextBudgets(
            query=TokenBudget(self.tokenizer, self.max_query_length, truncated_by_model=True),
            passage=TokenBudget(self.tokenizer, self.max_doc_length, truncated_by_model=True),
        )

    def block_prompts(self, query: str, passages: list[str]) -> tuple[list[str], list[list[int]], list[FittedText]]:
        """``(prompts, blocks, fitted passages)`` for one query: each block's passage indices and its prompt."""
        limits = PromptLimits(
            self.max_query_length, self.max_doc_length, self.max_length, self.block_size, self.instruction
        )
        return query_prompts(self.tokenizer, query, passages, limits)

    def run_prompts(self, rows: list[list[int]]) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per prompt (token ids): ``(query vector, passage vectors, in-block scores)``, on the CPU."""
        out: list[Any] = [None] * len(rows)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        with eval_mode(self.model), torch.inference_mode():
            for index in length_sorted_batches([len(r) for r in rows], self.batch_size):
                batch = pad_rows([rows[i] for i in index], pad_id, side="right")
                result: BlockOutput = self.model(
                    batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
                )
                for k, i in enumerate(index):
                    out[i] = (result.query_vectors[k].cpu(), result.doc_vectors[k].cpu(), result.scores[k].cpu())
        return out

    def score_pairs(self, pairs: Pairs) -> PairScores:
        """Each passage's merged-query cosine; per query, its prompts' tokens and block count on its first pair."""
        groups = pairs.by_query()
        plans, rows = [], []
        for qi, index in groups.items():
            prompts, blocks, docs = self.block_prompts(pairs.queries[qi], [pairs.passages[j] for j in index])
            plans.append((index, blocks, docs, len(rows)))
            rows.extend(self.tokenizer(p)["input_ids"] for p in prompts)
        outputs = self.run_prompts(rows)
        scores, tokens = [0.0] * len(pairs), [0] * len(pairs)
        truncated, calls = [0.0] * len(pairs), [0.0] * len(pairs)
        for index, blocks, docs, first in plans:
            mine = outputs[first : first + len(blocks)]
            queries, docs_out, in_block = zip(*mine)
            merged = merge_blocks(torch.stack(queries), list(docs_out), list(in_block))
            order = [index[i] for block in blocks for i in block]  # blocks keep input order, so this is index
            for j, value in zip(order, merged.tolist()):
                scores[j] = float(value)
            for j, doc in zip(index, docs):
                truncated[j] = float(doc.cut)
            tokens[index[0]] = sum(len(r) for r in rows[first : first + len(blocks)])
            calls[index[0]] = float(len(blocks))
        return PairScores(scores=scores, tokens=tokens, counts={"truncated_passages": truncated, "llm_calls": calls})
