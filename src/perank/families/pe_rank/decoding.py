"""Listwise decoding over passage tokens: the PE-Rank inference loop, batched and with a KV cache.

At every output step the model scores only the passages of its window: the logit of passage ``i`` is
``h_t . P(e_i)``, with ``h_t`` the final normed hidden state at the last position and ``P(e_i)`` the
projected passage embedding (REFERENCE.md, "Scores"; no temperature, no vocabulary head). The passage
chosen is removed from the candidates and its projected vector becomes the next input, so a window of
``n`` passages takes exactly ``n`` decode steps: one prefill, then ``n - 1`` single-position forward
passes that reuse the KV cache (the last step still needs its forward pass, for its real logit).

Batching: rows are whole windows (typically the same sliding-window position of several queries), left
padded to a common length. Left padding keeps every row's last prompt token in the last column, so the
decode steps append one column for all rows at once; positions are given explicitly
(``cumsum(attention_mask) - 1``) so that padding does not shift the rotary positions. Rows with fewer
candidates than the batch maximum simply stop choosing once they are done; their extra steps are ignored.

Shared prompt prefix: every window of a query starts with the same tokens (the chat template's system turn,
the instruction and the query, up to the first passage token), about a fifth of an embedding-prompt window.
:func:`prefill_prefix` runs that prefix once into a KV cache (:class:`PromptPrefix`), and
:func:`decode_listwise` given ``prefix=`` runs only each window's remainder on top of a copy of it. The rows'
prefixes are left padded among themselves and their remainders too, so the padding of the remainders sits in
the middle of the full sequence; the 2-D attention mask and the explicit positions make that harmless.

How the LLM is run is a :class:`DecodeRunner`: :class:`EagerRunner` (transformers' dynamic cache, every device
and attention kernel) by default, or :class:`perank.families.pe_rank.fast_decode.StaticDecoder` (a static KV
cache, and on CUDA each decode step replayed from a captured CUDA graph). The choosing, masking and accounting
below are the same for both, so the engines can only differ by float rounding.

:func:`decode_listwise_reference` is the brute-force specification (one window, no cache, the whole
sequence recomputed at every step); the tests hold the fast path equal to it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import torch
from torch import Tensor

if TYPE_CHECKING:
    from perank.families.pe_rank.model import PERankModel

DecodeMode = Literal["greedy", "single-pass"]
DECODE_MODES: tuple[str, ...] = ("greedy", "single-pass")


@dataclass
class DecodeOutput:
    """The ranking of one window.

    ``order[k]`` is the index (into the window's candidates) of the passage output at step ``k``;
    ``step_logits[k]`` its logit and ``step_probs[k]`` its softmax probability among the passages still
    available at that step (in single-pass mode: among all passages of the window, at the first step).
    ``tokens_processed`` counts the LLM input positions this row really used (non-pad prompt tokens plus
    fed-back passage vectors); ``tokens_generated`` the output distributions that were read.
    """

    order: list[int]
    step_logits: list[float] = field(default_factory=list)
    step_probs: list[float] = field(default_factory=list)
    tokens_processed: int = 0
    tokens_generated: int = 0


@dataclass
class PromptPrefix:
    """The KV cache of a batch's shared prompt beginning, computed once and reused by several windows.

    ``token_ids[b]`` is row ``b``'s prefix (it identifies the cache: a window may reuse it only if its own
    prompt starts with exactly these tokens); ``attention_mask`` is ``[B, L]``, left padded. The cache itself
    is never extended: :func:`decode_listwise` works on a deep copy, so the prefix stays valid for the next
    window whatever the installed transformers' cache API does on append.
    """

    token_ids: tuple[tuple[int, ...], ...]
    attention_mask: Tensor
    cache: Any


def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Token-id lists to ``[B, T]`` ids and attention mask, padded on the LEFT (the last column is real)."""
    width = max(len(seq) for seq in sequences)
    ids = torch.full((len(sequences), width), int(pad_id), dtype=torch.long)
    mask = torch.zeros(len(sequences), width, dtype=torch.long)
    for b, seq in enumerate(sequences):
        if seq:
            ids[b, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[b, width - len(seq) :] = 1
    return ids, mask


@torch.no_grad()
def prefill_prefix(model: PERankModel, token_ids: list[list[int]], pad_id: int = 0) -> PromptPrefix:
    """Run the rows' prompt prefixes (plain text tokens, no passage placeholders) once, keeping the KV cache."""
    if not token_ids or min(len(seq) for seq in token_ids) < 1:
        raise ValueError("every row needs a non-empty prompt prefix")
    ids, mask = left_pad(token_ids, pad_id)
    device = model.device
    ids, mask = ids.to(device), mask.to(device)
    embeds = model.inputs_embeds(ids, torch.zeros(0, model.config.hidden_size, device=device))
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    _, cache = model.hidden_states(embeds, attention_mask=mask, position_ids=position_ids, use_cache=True)
    return PromptPrefix(token_ids=tuple(tuple(seq) for seq in token_ids), attention_mask=mask, cache=cache)


def _pad_candidates(cand_vectors: list[Tensor], device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Stack per-row candidate vectors into ``[B, N_max, d]`` plus a validity mask ``[B, N_max]``."""
    sizes = [int(c.shape[0]) for c in cand_vectors]
    n_max = max(sizes)
    dim = int(cand_vectors[0].shape[-1])
    cands = torch.zeros(len(cand_vectors), n_max, dim, device=device, dtype=dtype)
    valid = torch.zeros(len(cand_vectors), n_max, dtype=torch.bool, device=device)
    for b, c in enumerate(cand_vectors):
        cands[b, : sizes[b]] = c.to(device=device, dtype=dtype)
        valid[b, : sizes[b]] = True
    return cands, valid


class DecodeRunner(Protocol):
    """How the decode loop runs the LLM: one prefill of the prompts, then single-position steps."""

    def prefill(
        self, embeds: Tensor, attention_mask: Tensor, position_ids: Tensor, prefix: PromptPrefix | None, steps: int
    ) -> Tensor:
        """Run ``embeds`` (the prompts after ``prefix``, whose mask ``attention_mask`` [B, prefix + T] covers both)
        and return the last position's final hidden state ``[B, d]``; ``steps`` decode steps will follow."""
        ...

    def step(self, inputs: Tensor) -> Tensor:
        """Append one input vector per row (``[B, 1, d]``) and return its final hidden state ``[B, d]``."""
        ...


class EagerRunner:
    """The default runner: transformers' dynamic KV cache, grown by one column per step (any device or kernel)."""

    def __init__(self, model: PERankModel) -> None:
        self.model = model
        self.cache: Any = None
        self.mask: Tensor | None = None
        self.position: Tensor | None = None

    def prefill(
        self, embeds: Tensor, attention_mask: Tensor, position_ids: Tensor, prefix: PromptPrefix | None, steps: int
    ) -> Tensor:
        cache = copy.deepcopy(prefix.cache) if prefix is not None else None  # the prefix stays reusable
        hidden, self.cache = self.model.hidden_states(
            embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=cache,
            use_cache=(steps > 0 or cache is not None),
        )
        self.mask, self.position = attention_mask, position_ids[:, -1:]
        return hidden[:, -1]

    def step(self, inputs: Tensor) -> Tensor:
        assert self.mask is not None and self.position is not None, "step() before prefill()"
        # one new column for every row; positions continue from each row's own last one
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=-1)
        self.position = self.position + 1
        hidden, self.cache = self.model.hidden_states(
            inputs, attention_mask=self.mask, position_ids=self.position, past_key_values=self.cache, use_cache=True
        )
        return hidden[:, -1]


def _passage_logits(hidden: Tensor, cands: Tensor) -> Tensor:
    """``h . P(e_i)`` for every row and candidate, in float32 so that near ties do not depend on dtype."""
    return torch.einsum("bd,bnd->bn", hidden.float(), cands.float())


@torch.no_grad()
def decode_listwise(
    model: PERankModel,
    input_ids: Tensor,
    attention_mask: Tensor,
    prompt_vectors: list[Tensor],
    cand_vectors: list[Tensor],
    mode: DecodeMode = "greedy",
    prefix: PromptPrefix | None = None,
    runner: DecodeRunner | None = None,
) -> list[DecodeOutput]:
    """Rank the candidates of every row (window) of a left-padded batch.

    ``prompt_vectors[b]`` holds, in order, the vectors replacing row ``b``'s ``<PLACEHOLDER>`` tokens;
    ``cand_vectors[b]`` (``[n_b, d]``) the projected passages the row ranks. ``greedy`` is PE-Rank's
    decoding; ``single-pass`` (FIRST-style) sorts the window by the first step's logits and feeds nothing
    back, a cheaper approximation. With ``prefix`` (from :func:`prefill_prefix`, same rows), ``input_ids``
    holds only what follows each row's prefix, and ``tokens_processed`` counts only those tokens (the
    prefix's are counted once, by whoever prefilled it). ``runner`` runs the greedy decode steps (default: a
    new :class:`EagerRunner`); single pass has no steps and always runs eagerly.
    """
    if mode not in DECODE_MODES:
        raise ValueError(f"unknown decode mode {mode!r}; choose one of {', '.join(DECODE_MODES)}")
    if input_ids.dim() != 2 or input_ids.shape != attention_mask.shape:
        raise ValueError("input_ids and attention_mask must both be [batch, length]")
    batch = int(input_ids.shape[0])
    if len(prompt_vectors) != batch or len(cand_vectors) != batch:
        raise ValueError(f"{batch} rows but {len(prompt_vectors)} prompt and {len(cand_vectors)} candidate lists")
    if bool((attention_mask[:, -1] == 0).any()):
        raise ValueError("decode_listwise needs LEFT padding (every row's last column must be a real token)")
    sizes = [int(c.shape[0]) for c in cand_vectors]
    if min(sizes) < 1:
        raise ValueError("every row needs at least one candidate passage")

    if prefix is not None and len(prefix.token_ids) != batch:
        raise ValueError(f"{batch} rows but a prompt prefix for {len(prefix.token_ids)}")

    device = model.device
    input_ids = input_ids.to(device)
    attention_mask = attention_mask.to(device=device, dtype=torch.long)
    prompt_tokens = attention_mask.sum(-1).tolist()
    embeds = model.inputs_embeds(input_ids, [v.to(device) for v in prompt_vectors])
    if prefix is not None:
        attention_mask = torch.cat([prefix.attention_mask.to(device), attention_mask], dim=-1)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1] :]
    n_max = max(sizes)
    if runner is None or mode != "greedy":
        runner = EagerRunner(model)
    last = runner.prefill(embeds, attention_mask, position_ids, prefix, n_max - 1 if mode == "greedy" else 0)
    cands, valid = _pad_candidates(cand_vectors, device, embeds.dtype)

    if mode == "single-pass":
        logits = _passage_logits(last, cands).masked_fill(~valid, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        outputs = []
        for b, n in enumerate(sizes):
            row_logits = logits[b, :n]
            order = torch.argsort(row_logits, descending=True, stable=True)
            outputs.append(
                DecodeOutput(
                    order=order.tolist(),
                    step_logits=row_logits[order].tolist(),
                    step_probs=probs[b, :n][order].tolist(),
                    tokens_processed=int(prompt_tokens[b]),
                    tokens_generated=1,
                )
            )
        return outputs

    # greedy: n_max steps; the choices stay on the device (no host sync inside the loop)
    rows = torch.arange(batch, device=device)
    available = valid.clone()
    chosen = torch.zeros(batch, n_max, dtype=torch.long, device=device)
    chosen_logits = torch.zeros(batch, n_max, dtype=torch.float32, device=device)
    chosen_probs = torch.zeros(batch, n_max, dtype=torch.float32, device=device)
    for step in range(n_max):
        if step > 0:  # feed the previous choice back
            last = runner.step(cands[rows, chosen[:, step - 1]].unsqueeze(1))
        logits = _passage_logits(last, cands).masked_fill(~available, float("-inf"))
        pick = logits.argmax(dim=-1)
        # rows that are done see only -inf; their (NaN) probabilities and picks are never read
        probs = torch.softmax(logits, dim=-1)
        chosen[:, step] = pick
        chosen_logits[:, step] = logits[rows, pick]
        chosen_probs[:, step] = probs[rows, pick]
        available[rows, pick] = False

    chosen_l, logits_l, probs_l = chosen.tolist(), chosen_logits.tolist(), chosen_probs.tolist()
    return [
        DecodeOutput(
            order=chosen_l[b][:n],
            step_logits=logits_l[b][:n],
            step_probs=probs_l[b][:n],
            tokens_processed=int(prompt_tokens[b]) + n - 1,
            tokens_generated=n,
        )
        for b, n in enumerate(sizes)
    ]


@torch.no_grad()
def decode_listwise_reference(
    model: PERankModel,
    input_ids: Tensor,
    prompt_vectors: Tensor,
    cand_vectors: Tensor,
    max_steps: int | None = None,
) -> DecodeOutput:
    """Greedy listwise decoding of ONE window by brute force: no padding, no cache, no batching.

    At every step the whole sequence (prompt plus the vectors chosen so far) is run through the LLM again
    and the last position scores the passages not yet output. Slow on purpose: it is the specification
    that :func:`decode_listwise` must reproduce. ``max_steps`` stops early (the order is then a prefix) for
    models too large to recompute n times in a test.
    """
    device = model.device
    ids = input_ids.reshape(1, -1).to(device)
    prompt = model.inputs_embeds(ids, prompt_vectors.to(device))
    cands = cand_vectors.to(device=device, dtype=prompt.dtype)
    n = int(cands.shape[0])
    available = torch.ones(n, dtype=torch.bool, device=device)
    sequence = prompt
    out = DecodeOutput(order=[], tokens_processed=int(ids.shape[1]) + n - 1, tokens_generated=n)
    for _ in range(n if max_steps is None else min(n, max_steps)):
        hidden, _ = model.hidden_states(sequence)
        logits = (cands.float() @ hidden[0, -1].float()).masked_fill(~available, float("-inf"))
        pick = int(logits.argmax())
        out.order.append(pick)
        out.step_logits.append(float(logits[pick]))
        out.step_probs.append(float(torch.softmax(logits, dim=-1)[pick]))
        available[pick] = False
        sequence = torch.cat([sequence, cands[pick].view(1, 1, -1)], dim=1)
    return out
