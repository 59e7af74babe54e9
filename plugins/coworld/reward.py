"""Stage B of CoWorld — online-to-offline reward alignment (Wang et al., Eq. 4–5, Algorithm 1 lines 17–21).

For a target sequence {(o_t^T, a_t^T, r_t^T)} sampled from the offline dataset, the *source* world model
filters the target observations with the target actions,

    h̃_t = f_φ'(h̃_{t−1}, z̃_{t−1}, a_{t−1}^T),   ẽ_t = e_φ'(o_t^T),   z̃_t ~ q_φ'(h̃_t, ẽ_t),

and relabels the reward (Eq. 4)

    r̃_t = (1 − k) · r_φ'(h̃_t, z̃_t) + k · r_t^T.

The source reward head is then trained on (Eq. 5)

    L_r(φ') = η · E_{B^S}[−ln r_φ'(r_t^S | h_t^S, z_t^S)] + (1 − η) · E_{B^T}[−ln r_φ'(r̃_t | h̃_t, z̃_t)],

integrated into the source world-model loss (Eq. 2): the reward term of the source's own batch is
reweighted from 1 to η and the relabelled term is added with weight 1 − η. Gradients of the relabelled term
reach the whole source world model through (h̃, z̃) ("train the entire world model M_φ'", Section 3.2, as in
the authors' code); the relabelled target r̃ itself is a stop-gradient label. The unit-variance Gaussian
log-likelihood is ½(r̂ − r)², as in xfer's world-model loss.

Defaults (Table 7): k = 0.3 for Meta-World/RoboDesk, 0.9 for DMC; η falls from 1 to 0.1 (Section 3.2).

**gap / xfer**: the authors' code computes ``eta = max(1 - step / 200000, 0.2)`` from a step counter that is
set once at construction and never advances, so η stays at 1 and the relabelled term has zero weight.
xfer's :class:`EtaSchedule` counts every Stage B update, is checkpointed, and reaches its floor (default 0.1
as in the paper) after ``steps`` updates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
from torch import Tensor

from xfer.dreamer.world_model import Batch, WorldModel, WorldModelOutputs


class EtaSchedule:
    """η of Eq. 5: from ``start`` to ``floor`` over ``steps`` Stage B updates, then held at the floor.

    ``shape="linear"`` interpolates linearly (the shape of the authors' formula); ``"cosine"`` follows half a
    cosine. :meth:`advance` is called once per source world-model update with reward alignment."""

    def __init__(self, start: float = 1.0, floor: float = 0.1, steps: int = 100_000,
                 shape: Literal["linear", "cosine"] = "linear") -> None:
        if steps < 1:
            raise ValueError("the η schedule needs steps >= 1")
        self.start, self.floor, self.steps, self.shape = start, floor, steps, shape
        self.count = 0

    @property
    def value(self) -> float:
        progress = min(self.count / self.steps, 1.0)
        if self.shape == "cosine":
            import math

            progress = 0.5 * (1.0 - math.cos(math.pi * progress))
        return self.start + (self.floor - self.start) * progress

    def advance(self, n: int = 1) -> None:
        self.count += n

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.count = int(state["count"])


def relabel_reward(source_reward: Tensor, target_reward: Tensor, k: float) -> Tensor:
    """Eq. 4: r̃ = (1 − k)·r_φ'(h̃, z̃) + k·r^T, as a stop-gradient label."""
    return ((1.0 - k) * source_reward + k * target_reward.float()).detach()


def reward_nll(prediction: Tensor, target: Tensor) -> Tensor:
    """−ln N(target; prediction, 1) up to a constant, averaged: ½(r̂ − r)² (xfer's world-model reward loss)."""
    return 0.5 * (prediction - target.float()).square().mean()


class RewardAlignment:
    """The Stage B world-model term for a source agent (Eq. 4–5).

    ``sample_target()`` returns a target batch (tensors on the source's device, actions padded to the
    source's action size). Register with ``source.add_world_model_term(term)``; every call advances η.
    ``world_model`` is the source's; its reward head is trained on both the source batch (weight η, by
    reweighting the base loss's reward term) and the relabelled target batch (weight 1 − η).
    """

    def __init__(self, world_model: WorldModel, k: float, eta: EtaSchedule,
                 sample_target: Callable[[], Batch]) -> None:
        self.world_model, self.k, self.eta, self.sample_target = world_model, k, eta, sample_target
        self.enabled = True

    def __call__(self, out: WorldModelOutputs, batch: Mapping[str, Tensor]
                 ) -> tuple[Tensor, dict[str, Tensor]]:
        if not self.enabled:
            return out.feat.new_zeros(()), {}
        wm = self.world_model
        eta = self.eta.value
        target = self.sample_target()
        target_out = wm.observe(target)  # h̃, z̃ of Eq. 4, with a graph into the source world model
        predicted = wm.reward(target_out.feat)
        relabelled = relabel_reward(predicted, target["reward"], self.k)
        target_loss = reward_nll(predicted, relabelled)
        source_loss = reward_nll(wm.reward(out.feat, out.cond), batch["reward"])
        # the base loss holds reward_scale·L_src; adding (η − 1)·L_src + (1 − η)·L_tg gives Eq. 5's mixture
        loss = wm.cfg.reward_scale * ((eta - 1.0) * source_loss + (1.0 - eta) * target_loss)
        self.eta.advance()
        error = (predicted.detach() - target["reward"].float()).abs().mean()
        metrics = {"coworld/eta": torch.tensor(eta), "coworld/relabel_loss": target_loss.detach(),
                   "coworld/relabelled_reward": relabelled.mean(), "coworld/target_reward_error": error}
        return loss, metrics
