"""Actor-critic learning in imagination (DreamerV2 Section 3, Eq. 3-6).

From every posterior state of the batch the actor imagines ``horizon`` steps in the frozen world model. The
critic regresses λ-returns (Eq. 4) computed with a slow target critic (copied every ``slow_critic_every``
updates); the actor maximises them by dynamics backpropagation and/or REINFORCE mixed by ρ, plus an entropy
bonus (Eq. 6). Index conventions follow DreamerV2's code: ``action[t]`` of a trajectory was chosen at state
t−1 (``action[0]`` is zero), rewards and discounts are predicted from state t, and the actor's choice at
state t is credited with the return from state t+1 (``target[1:]``).

Seams:
- ``actor_extra_dim`` > 0: the actor reads concat(feat, extra). Extras come from an :data:`ActorExtraFactory`,
  called once per rollout with the start states and condition; it returns the per-step function
  (state, prev_action) → extra, called with the (detached) state the actor acts from and the action that
  led to it (zeros at the start). Vid2Act re-selects its label k* per imagined step from them (its teacher
  steps the previous state with that action) and feeds its action-replay decoder's hidden activation.
- :data:`CriticTerm`: callables adding to the critic loss, given the imagination, its returns and the critic's
  value predictions (CoWorld's value constraint α·max(v_tg, sg(v_src)), Eq. 6 of CoWorld).
- :meth:`ActorCritic.frozen_value`: this critic's value without a graph, safe to call from another agent.
- :meth:`ActorCritic.set_action_mask`: action entries that are padding (an agent whose action size is the
  largest of several domains, CoWorld and Vid2Act) are exactly 0 wherever an action is drawn — imagination
  and acting — and are left out of the actor's log-probability and entropy, so no model sees them.
- the reward of imagination is a parameter of :meth:`ActorCritic.losses` (CoWorld relabelling, offline-DV2
  penalty).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from xfer.dreamer.config import DreamerConfig
from xfer.nets.dists import ActionDist, OneHotCategorical, TruncatedNormal
from xfer.nets.mlp import MLP
from xfer.nets.rssm import RSSM, LatentState

ActorExtraFn = Callable[[LatentState, Tensor], Tensor]  # (state, action that led to it) → extra
ActorExtraFactory = Callable[[LatentState, Tensor | None], ActorExtraFn]


@dataclass
class Imagination:
    """An imagined rollout of N trajectories, time-major."""

    state: LatentState  # [H+1, N, ...]
    feat: Tensor  # [H+1, N, F]
    action: Tensor  # [H+1, N, A], action[t] chosen at state t-1, action[0] = 0
    actor_out: Tensor  # [H, N, P] raw actor outputs at states 0..H-1
    extra: Tensor | None  # [H, N, E] actor extra inputs at states 0..H-1
    cond: Tensor | None  # [N, K]


class Returns(NamedTuple):
    reward: Tensor  # [H+1, N]
    discount: Tensor  # [H+1, N]
    weight: Tensor  # [H+1, N] cumulative discount, detached
    value: Tensor  # [H+1, N] slow-critic values
    target: Tensor  # [H, N] λ-returns of states 0..H-1


CriticTerm = Callable[[Imagination, Returns, Tensor], tuple[Tensor, dict[str, Tensor]]]


def lambda_return(reward: Tensor, value: Tensor, discount: Tensor, bootstrap: Tensor, lam: float) -> Tensor:
    """λ-return, DreamerV2 Eq. 4 (Vid2Act Eq. 9), over time-major [T, ...] inputs:

        V_t = r_t + γ_t ((1 − λ) v_{t+1} + λ V_{t+1})   for t < T,   V_T = v_T = ``bootstrap``.
    """
    next_value = torch.cat([value[1:], bootstrap[None]])
    inputs = reward + discount * next_value * (1 - lam)
    returns = []
    last = bootstrap
    for t in reversed(range(reward.shape[0])):
        last = inputs[t] + discount[t] * lam * last
        returns.append(last)
    return torch.stack(returns[::-1])


class ActorCritic(nn.Module):
    def __init__(self, feat_dim: int, act_dim: int, discrete: bool, cfg: DreamerConfig,
                 actor_extra_dim: int = 0) -> None:
        super().__init__()
        self.cfg, self.act_dim, self.discrete, self.actor_extra_dim = cfg, act_dim, discrete, actor_extra_dim
        out_dim = act_dim if discrete else 2 * act_dim
        self.actor = MLP(feat_dim + actor_extra_dim, out_dim, cfg.mlp_units, cfg.actor_layers)
        self.critic = MLP(feat_dim, 1, cfg.mlp_units, cfg.critic_layers)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.rho = cfg.reinforce_weight(discrete)
        self.entropy_scale = cfg.entropy_scale(discrete)
        self.action_mask: Tensor | None
        self.register_buffer("action_mask", None, persistent=False)  # [A] bool, False = padded entry

    def set_action_mask(self, real: Sequence[bool] | Tensor | None) -> None:
        """Mark padded action entries (``real[i]`` False): continuous actions only. ``None`` = all real. A
        non-persistent buffer: it moves with the module but is not in the state dict (checkpoints keep their
        keys), so the method that pads sets it after construction."""
        if real is None:
            self.action_mask = None
            return
        mask = torch.as_tensor(real, dtype=torch.bool, device=next(self.critic.parameters()).device)
        if self.discrete:
            raise ValueError("an action mask is for padded continuous actions, not discrete ones")
        if mask.shape != (self.act_dim,) or not bool(mask.any()):
            raise ValueError(f"the action mask needs {self.act_dim} entries with at least one real entry, "
                             f"got {mask.tolist()}")
        self.action_mask = None if bool(mask.all()) else mask

    # -- heads ---------------------------------------------------------------------------------------------
    def dist(self, actor_out: Tensor) -> ActionDist:
        """Action distribution from raw actor outputs: one-hot categorical, or a truncated normal on [-1, 1]
        with mean tanh(μ) and std 2·sigmoid(σ/2) + min_std (DreamerV2 code), its padded entries masked."""
        if self.discrete:
            return OneHotCategorical(actor_out)
        mean, std = actor_out.chunk(2, -1)
        return TruncatedNormal(torch.tanh(mean), 2 * torch.sigmoid(std / 2) + self.cfg.actor_min_std,
                               mask=self.action_mask)

    def actor_forward(self, feat: Tensor, extra: Tensor | None) -> Tensor:
        return self.actor(feat if extra is None else torch.cat([feat, extra], -1)).float()

    def value(self, feat: Tensor) -> Tensor:
        return self.critic(feat).squeeze(-1).float()

    @torch.no_grad()
    def frozen_value(self, feat: Tensor) -> Tensor:
        """This critic's value of ``feat`` with no graph: for other agents (CoWorld's sg(v_src))."""
        return self.value(feat.detach())

    def update_slow_critic(self, updates: int) -> None:
        """Copy (or blend by ``slow_critic_fraction``) the critic into the target every ``slow_critic_every``
        updates; ``updates`` counts the updates done before this one (DreamerV2 code copies at 0)."""
        if updates % self.cfg.slow_critic_every:
            return
        mix = 1.0 if updates == 0 else self.cfg.slow_critic_fraction
        with torch.no_grad():
            for slow, fast in zip(self.slow_critic.parameters(), self.critic.parameters(), strict=True):
                slow.lerp_(fast, mix)

    # -- imagination ---------------------------------------------------------------------------------------
    def imagine(self, rssm: RSSM, start: LatentState, cond: Tensor | None = None,
                extra_factory: ActorExtraFactory | None = None) -> Imagination:
        """Roll the actor out for ``horizon`` steps from ``start`` [N, ...] in ``rssm``. The actor reads
        sg(feat) (DreamerV2 code); gradients reach it through the sampled actions only. Run under
        ``torch.no_grad()`` when only REINFORCE is used (ρ = 1)."""
        extra_fn = extra_factory(start, cond) if extra_factory is not None else None
        state = start
        states, actions, outs, extras = [start], [torch.zeros(*start.deter.shape[:-1], self.act_dim,
                                                              device=start.deter.device)], [], []
        for _ in range(self.cfg.horizon):
            feat = rssm.feat(state).detach()
            extra = (extra_fn(state.map(Tensor.detach), actions[-1].detach()) if extra_fn is not None
                     else None)
            out = self.actor_forward(feat, extra)
            action = self.dist(out).rsample()
            state = rssm.img_step(state, action, cond)
            states.append(state)
            actions.append(action)
            outs.append(out)
            if extra is not None:
                extras.append(extra)
        stacked = LatentState.stack(states, 0)
        return Imagination(stacked, rssm.feat(stacked), torch.stack(actions), torch.stack(outs),
                           torch.stack(extras) if extras else None, cond)

    # -- losses --------------------------------------------------------------------------------------------
    def returns(self, imag: Imagination, reward: Tensor, discount: Tensor, start_continues: Tensor
                ) -> Returns:
        """λ-returns with the slow critic. The start state's discount is γ·(1 − is_terminal) of the data and
        the weight of state t is Π_{τ<t} γ̂_τ, detached (DreamerV2 code)."""
        discount = torch.cat([self.cfg.discount * start_continues[None], discount[1:]])
        weight = torch.cumprod(torch.cat([torch.ones_like(discount[:1]), discount[:-1]]), 0).detach()
        value = self.slow_critic(imag.feat).squeeze(-1).float()
        target = lambda_return(reward[:-1], value[:-1], discount[:-1], value[-1], self.cfg.return_lambda)
        return Returns(reward, discount, weight, value, target)

    def actor_loss(self, imag: Imagination, ret: Returns, actor_out: Tensor
                   ) -> tuple[Tensor, dict[str, Tensor]]:
        """DreamerV2 Eq. 6: −ρ·ln π(â_t|ẑ_t)·sg(V^λ − v) − (1−ρ)·V^λ − η·H[π(·|ẑ_t)], weighted by the
        cumulative discount. ``actor_out`` [H, N, P] are the actor outputs at states 0..H-1 (with gradients).
        The baseline v is the slow critic (DreamerV2 code, ``slow_baseline``)."""
        dist = self.dist(actor_out[:-1])
        target = ret.target[1:]
        objective = torch.zeros_like(target)
        if self.rho > 0:
            advantage = (target - ret.value[:-2]).detach()
            objective = objective + self.rho * dist.log_prob(imag.action[1:-1].detach()) * advantage
        if self.rho < 1:
            objective = objective + (1 - self.rho) * target
        entropy = dist.entropy()
        objective = objective + self.entropy_scale * entropy
        loss = -(ret.weight[:-2] * objective).mean()
        return loss, {"actor/loss": loss.detach(), "actor/entropy": entropy.detach().mean()}

    def critic_loss(self, imag: Imagination, ret: Returns) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """DreamerV2 Eq. 5: ½(v(ẑ_t) − sg(V^λ_t))², weighted by the cumulative discount, on sg(feat).
        Returns (loss, value predictions [H, N], metrics)."""
        value = self.value(imag.feat[:-1].detach())
        loss = (0.5 * (value - ret.target.detach()).square() * ret.weight[:-1]).mean()
        return loss, value, {"critic/loss": loss.detach(), "critic/value": value.detach().mean()}
