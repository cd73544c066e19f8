"""The loss of ``--family jina-listwise``: in-list InfoNCE plus RankNet on the in-block cosines.

jina-reranker-v3's report (arXiv 2509.25085) trains with a multi-objective: an InfoNCE-style ranking loss over
the candidates that share the query's prompt (the relevant one against the hard negatives beside it), with
auxiliary contrastive terms, over three stages on labelled data. The rows here carry a teacher's full order of a
window rather than relevance labels, so the loss uses both ends of it:

- ``loss_infonce``: the in-prompt InfoNCE of the report, towards the teacher's top candidate, every other
  candidate of the same prompt a negative (:func:`perank.training.rank_losses.top_cross_entropy`);
- ``loss_ranknet``: RankNet over every pair the teacher orders (the function E2Rank's runner uses,
  :func:`perank.training.rank_losses.ranknet_loss`), so the order below the top also teaches.

Both read the cosines divided by ``--temperature`` (0.05: cosines live in [-1, 1], so a softmax over them needs a
scale of ~20 to be peaked; the usual InfoNCE temperature for cosine embedders). There is no in-batch negative
across prompts: a candidate is only ever scored against its own prompt's query, as at inference.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from perank.training.rank_losses import ranknet_loss, top_cross_entropy


def jina_losses(scores: Tensor, positions: Tensor, lengths: Sequence[int], temperature: float) -> dict[str, Tensor]:
    """``{"loss_infonce", "loss_ranknet"}`` of lists laid end to end: each list's cosines in prompt order,
    their teacher ``positions`` (0 = first), ``lengths[i]`` candidates in list i."""
    scale = 1.0 / temperature
    return {
        "loss_infonce": top_cross_entropy(scores, positions, lengths, scale),
        "loss_ranknet": ranknet_loss(scores, positions, lengths, scale),
    }
