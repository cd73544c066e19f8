"""ListMLE (uniform / top-weighted) against hand computations, and the KL term's direction."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from perank.families.pe_rank.training.losses import kl_loss, listmle_loss, step_logits, step_weights


def _hand_steps(scores: list[float], ranking: list[int]) -> list[float]:
    """-log P(ranking[k] | remaining) for each step, written out with math."""
    remaining = list(range(len(scores)))
    out = []
    for target in ranking:
        z = sum(math.exp(scores[i]) for i in remaining)
        out.append(-(scores[target] - math.log(z)))
        remaining.remove(target)
    return out


def _setup() -> tuple[torch.Tensor, torch.Tensor, list[float], list[int]]:
    # one hidden vector repeated for every step and 1-d passages: scores are the passage values
    scores = [0.3, -1.2, 2.0, 0.7]
    ranking = [2, 0, 3, 1]
    hidden = torch.ones(4, 1)
    passages = torch.tensor(scores).unsqueeze(1)
    return hidden, passages, scores, ranking


def test_step_logits_masks_already_ranked() -> None:
    hidden, passages, _, ranking = _setup()
    logits = step_logits(hidden, passages, torch.tensor(ranking))
    assert logits[0].gt(-1e8).all()
    assert logits[1, 2] < -1e8 and logits[1].gt(-1e8).sum() == 3
    assert logits[3].gt(-1e8).sum() == 1 and logits[3, 1] > -1e8


def test_uniform_listmle_is_mean_of_steps() -> None:
    hidden, passages, scores, ranking = _setup()
    logits = step_logits(hidden, passages, torch.tensor(ranking))
    got = listmle_loss(logits, torch.tensor(ranking), "uniform")
    steps = _hand_steps(scores, ranking)
    assert got.item() == pytest.approx(sum(steps) / len(steps), rel=1e-5)


def test_top_listmle_weights_halve() -> None:
    hidden, passages, scores, ranking = _setup()
    logits = step_logits(hidden, passages, torch.tensor(ranking))
    got = listmle_loss(logits, torch.tensor(ranking), "top")
    steps = _hand_steps(scores, ranking)
    assert got.item() == pytest.approx(sum(s / 2**k for k, s in enumerate(steps)), rel=1e-5)
    assert step_weights(3, "top").tolist() == [1.0, 0.5, 0.25]
    with pytest.raises(ValueError):
        step_weights(3, "bogus")


def test_perfect_scores_give_small_loss() -> None:
    ranking = torch.tensor([1, 0, 2])
    passages = torch.tensor([[5.0], [10.0], [0.0]])
    loss = listmle_loss(step_logits(torch.ones(3, 1), passages, ranking), ranking)
    assert loss.item() < 0.01


def test_kl_direction_and_sign() -> None:
    wo = torch.tensor([[1.0, 0.0, -1.0], [-1e9, 2.0, 0.0]])
    w = torch.tensor([[0.0, 1.0, 0.0], [-1e9, 0.5, 0.5]])
    got = kl_loss(wo, w)
    # KL(p_w || p_wo) summed over steps / number of steps (batchmean), masked entries contribute 0
    p_w, p_wo = F.softmax(w, -1), F.softmax(wo, -1)
    expected = (p_w * (p_w.clamp_min(1e-30).log() - p_wo.clamp_min(1e-30).log())).sum() / 2
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert got.item() > 0
    assert kl_loss(w, w).item() == pytest.approx(0.0, abs=1e-7)
    assert torch.isfinite(got)


def test_kl_target_not_detached() -> None:
    wo = torch.randn(3, 3, requires_grad=True)
    w = torch.randn(3, 3, requires_grad=True)
    kl_loss(wo, w).backward()
    assert wo.grad is not None and w.grad is not None and w.grad.abs().sum() > 0
