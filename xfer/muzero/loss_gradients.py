"""How hard each EfficientZero loss term pulls on each part of the network.

A term that a model does not learn may be starved (the other terms' gradients dominate the parameters it
shares with them) or merely slow (its own signal is weak, e.g. rewards on 1-2 % of steps). The norms below
tell the two apart: for every loss term of Eq. 3 (value, reward, policy, consistency), weighted by its
coefficient and divided by the unroll length as :meth:`xfer.muzero.learner.Learner.step` scales the total,
the L2 norm of its gradient on each parameter group, before clipping. Groups: the representation h, the
dynamics trunk of g, g's reward (value-prefix) path, the prediction f, the SimSiam projection.
``benchmarks/ez_loss_gradients.py`` measures them on a run's replay.
"""

from __future__ import annotations

import torch
from torch import nn

from xfer.muzero.learner import TERMS, Learner, loss_coefficients
from xfer.muzero.targets import TrainBatch

REWARD_PATH = ("reward_conv", "lstm", "lstm_bn", "head")  # the dynamics network's value-prefix modules


def parameter_groups(net: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Every trainable parameter of an :class:`~xfer.muzero.networks.EfficientZeroNet` in one group."""
    dynamics = list(net.dynamics_net.named_parameters())
    return {"representation": list(net.representation.parameters()),
            "dynamics": [p for name, p in dynamics if name.split(".")[0] not in REWARD_PATH],
            "reward": [p for name, p in dynamics if name.split(".")[0] in REWARD_PATH],
            "prediction": list(net.prediction.parameters()),
            "projection": [*net.projector.parameters(), *net.projection_head.parameters()]}


def loss_gradient_norms(learner: Learner, batch: TrainBatch) -> dict[str, dict[str, float]]:
    """term -> group -> norm of the gradient of ``coeff * term / unroll_steps`` on that group's parameters
    (0 where the term does not reach the group). The weights are not changed; the forward pass runs in
    train mode, as an update's does, so batch-norm running statistics move as after one more batch."""
    cfg = learner.cfg
    coefficients = loss_coefficients(cfg)
    groups = parameter_groups(learner.net)
    losses = learner.losses(batch)
    out: dict[str, dict[str, float]] = {}
    for term in TERMS:
        loss = coefficients[term] * getattr(losses, term) / cfg.unroll_steps
        out[term] = {}
        for name, params in groups.items():
            grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            squares = [g.detach().float().pow(2).sum() for g in grads if g is not None]
            out[term][name] = float(torch.stack(squares).sum().sqrt()) if squares else 0.0
    return out
