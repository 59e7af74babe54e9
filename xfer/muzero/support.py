"""Categorical value / reward support with MuZero's invertible transform.

MuZero (Schrittwieser et al. 2020, Appendix F) and EfficientZero predict values and value prefixes as a
categorical distribution over the integers [-n, n] of the transformed scalar h(x), with

    h(x) = sign(x) * (sqrt(|x| + 1) - 1) + eps * x,     eps = 0.001           (Pohlen et al. 2018, Prop. A.2)

and the closed-form inverse of Prop. A.2. A scalar becomes a distribution by splitting its mass between
the two neighbouring integers of h(x) ("two-hot"); a distribution becomes a scalar by h^-1(E[bin]).
"""

from __future__ import annotations

import torch

EPS = 1e-3


def h_transform(x: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """h(x) = sign(x)(sqrt(|x|+1) - 1) + eps x."""
    return torch.sign(x) * (torch.sqrt(torch.abs(x) + 1.0) - 1.0) + eps * x


def h_inverse(y: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """The exact inverse of :func:`h_transform` (Pohlen et al. 2018, Prop. A.2)."""
    root = (torch.sqrt(1.0 + 4.0 * eps * (torch.abs(y) + 1.0 + eps)) - 1.0) / (2.0 * eps)
    return torch.sign(y) * (root**2 - 1.0)


def scalar_to_support(x: torch.Tensor, support_size: int) -> torch.Tensor:
    """Two-hot distribution of h(x) over the bins [-n, n]; adds a trailing dim of 2n + 1."""
    y = h_transform(x.float()).clamp(-support_size, support_size)
    low = y.floor()
    p_high = y - low
    low_idx = (low + support_size).long()
    high_idx = (low_idx + 1).clamp(max=2 * support_size)
    probs = torch.zeros(*x.shape, 2 * support_size + 1, device=x.device)
    probs.scatter_add_(-1, low_idx.unsqueeze(-1), (1.0 - p_high).unsqueeze(-1))
    probs.scatter_add_(-1, high_idx.unsqueeze(-1), p_high.unsqueeze(-1))
    return probs


def support_to_scalar(logits: torch.Tensor) -> torch.Tensor:
    """h^-1 of the expected bin under softmax(logits); drops the last dim."""
    support_size = (logits.shape[-1] - 1) // 2
    bins = torch.arange(-support_size, support_size + 1, device=logits.device, dtype=torch.float32)
    expected = (torch.softmax(logits.float(), dim=-1) * bins).sum(-1)
    return h_inverse(expected)
