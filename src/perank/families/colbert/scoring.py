"""MaxSim, bge-m3's ColBERT score, over padded batches of token vectors.

score(q, p) = (1 / n_q) * sum over query tokens i of max over passage tokens j of q_i . p_j, with n_q the query's
token vectors (CLS excluded). With normalised vectors it lies in [-1, 1].

Two pitfalls of the peers are avoided here (REFERENCE-families §4):

- a padded passage position must never win a max: FlagEmbedding's ``compute_score`` pads with zero vectors, so a
  query token whose true best similarity is negative gets 0 instead, and the score depends on the batch; here
  pads get :data:`PAD_SIMILARITY` (AnswerDotAI's -1e4), so the score is the unpadded one at any batch size;
- padded query positions are left out of the sum and of n_q, and everything is summed in fp32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

#: the similarity a padded passage position gets: far below any dot product of unit vectors
PAD_SIMILARITY = -1e4


def pad_matrices(matrices: Sequence[Tensor], device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """``([n, L, d] float32, [n, L] bool mask)`` from ``n`` matrices of ``[rows_i, d]`` (L = the most rows)."""
    if not matrices:
        raise ValueError("pad_matrices needs at least one matrix")
    rows = max(int(m.shape[0]) for m in matrices)
    dim = int(matrices[0].shape[-1])
    out = torch.zeros(len(matrices), rows, dim, dtype=torch.float32, device=device)
    mask = torch.zeros(len(matrices), rows, dtype=torch.bool, device=device)
    for i, m in enumerate(matrices):
        out[i, : m.shape[0]] = m.to(device=out.device, dtype=torch.float32)
        mask[i, : m.shape[0]] = True
    return out, mask


def maxsim(queries: Tensor, query_mask: Tensor, passages: Tensor, passage_mask: Tensor) -> Tensor:
    """Scores ``[B, N]`` of every query against every passage.

    ``queries`` ``[B, Lq, d]`` with ``query_mask`` ``[B, Lq]``; ``passages`` ``[N, Lp, d]`` with ``passage_mask``
    ``[N, Lp]`` (True = a real token). Differentiable (the training loss uses it)."""
    sim = torch.einsum("bid,njd->bnij", queries.float(), passages.float())
    sim = sim.masked_fill(~passage_mask.bool()[None, :, None, :], PAD_SIMILARITY)
    best = sim.max(dim=-1).values  # [B, N, Lq]
    qmask = query_mask.to(best.dtype)
    total = (best * qmask[:, None, :]).sum(dim=-1)
    return total / qmask.sum(dim=-1, keepdim=True).clamp(min=1.0)


def score_query(query: Tensor, passages: Sequence[Tensor], batch_size: int) -> list[float]:
    """MaxSim of one query ``[Lq, d]`` against each passage matrix, ``batch_size`` passages per padded block."""
    device = query.device
    q = query.float().unsqueeze(0)
    qmask = torch.ones(1, q.shape[1], dtype=torch.bool, device=device)
    scores: list[float] = []
    for start in range(0, len(passages), batch_size):
        block, mask = pad_matrices(passages[start : start + batch_size], device)
        scores.extend(maxsim(q, qmask, block, mask)[0].tolist())
    return scores
