"""λ-returns (DreamerV2 Eq. 4) and the distributions (straight-through one-hot, truncated normal)."""

from __future__ import annotations

import math

import pytest
import torch

from xfer.dreamer.behavior import lambda_return
from xfer.nets.dists import (
    OneHotCategorical,
    TruncatedNormal,
    log_softmax,
    softmax,
    straight_through_onehot,
)


def _returns(lam: float) -> torch.Tensor:
    reward = torch.tensor([1.0, 2.0])
    value = torch.tensor([0.5, 1.0])
    discount = torch.tensor([0.9, 0.9])
    return lambda_return(reward, value, discount, torch.tensor(2.0), lam)


def test_lambda_return_by_hand() -> None:
    # V1 = 2 + 0.9 * (0.5 * 2 + 0.5 * 2) = 3.8 ; V0 = 1 + 0.9 * (0.5 * v1 + 0.5 * V1) = 1 + 0.9 * 2.4 = 3.16
    assert torch.allclose(_returns(0.5), torch.tensor([3.16, 3.8]))


def test_lambda_return_limits() -> None:
    assert torch.allclose(_returns(1.0)[0], torch.tensor(1 + 0.9 * 2 + 0.81 * 2))  # Monte Carlo
    assert torch.allclose(_returns(0.0)[0], torch.tensor(1 + 0.9 * 1.0))  # TD(0)


def test_straight_through_sample_is_onehot_and_passes_gradients() -> None:
    logits = torch.randn(5, 4, 6, requires_grad=True)
    sample = straight_through_onehot(logits)
    values = sample.detach()
    assert torch.allclose(values.sum(-1), torch.ones(5, 4))
    assert torch.allclose(values, values.round(), atol=1e-6)  # one-hot up to float rounding
    (sample * torch.randn_like(sample)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_onehot_categorical_log_prob_and_entropy() -> None:
    dist = OneHotCategorical(torch.log(torch.tensor([[0.5, 0.25, 0.25]])))
    assert torch.allclose(dist.log_prob(torch.tensor([[0.0, 1.0, 0.0]])), torch.tensor([math.log(0.25)]))
    assert torch.allclose(dist.entropy(), torch.tensor([1.5 * math.log(2)]))
    assert torch.equal(dist.mode(), torch.tensor([[1.0, 0.0, 0.0]]))


@pytest.mark.parametrize("loc, scale", [(0.0, 1.0), (0.99, 0.1), (-0.99, 0.1), (0.5, 5.0)])
def test_truncated_normal_samples_in_bounds_with_gradients(loc: float, scale: float) -> None:
    mean = torch.full((4000, 2), loc, requires_grad=True)
    dist = TruncatedNormal(mean, torch.full((4000, 2), scale))
    sample = dist.rsample()
    assert sample.min() >= -1 and sample.max() <= 1
    sample.sum().backward()
    assert mean.grad is not None and torch.isfinite(mean.grad).all()


def test_truncated_normal_density_and_entropy_match_numerics() -> None:
    dist = TruncatedNormal(torch.tensor([[0.7]]), torch.tensor([[0.6]]))
    grid = torch.linspace(-1, 1, 20001)[:, None]
    log_p = TruncatedNormal(torch.full_like(grid, 0.7), torch.full_like(grid, 0.6)).log_prob(grid)
    density = log_p.exp()
    step = 2 / 20000
    assert torch.isclose((density * step).sum(), torch.tensor(1.0), atol=1e-3)
    numeric_entropy = -(density * log_p * step).sum()
    assert torch.isclose(dist.entropy()[0], numeric_entropy, atol=1e-3)


def test_elementwise_softmax_matches_torch_in_value_and_gradient() -> None:
    """The categorical latents' and actions' softmax / log-softmax equal torch's (values, gradients, and
    no overflow for large logits)."""
    logits = torch.randn(5, 4, 32, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(softmax(logits), torch.softmax(logits, -1))
    assert torch.allclose(log_softmax(logits), torch.log_softmax(logits, -1))
    assert torch.autograd.gradcheck(softmax, (logits,))
    assert torch.autograd.gradcheck(log_softmax, (logits,))
    large = torch.tensor([[1000.0, 0.0, -1000.0]])
    assert torch.equal(softmax(large), torch.tensor([[1.0, 0.0, 0.0]]))
    assert torch.isfinite(log_softmax(large)).all()
