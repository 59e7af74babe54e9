"""The EfficientZero objective and one SGD step (XTRA App. A Eq. 3; Ye et al. 2021; MuZero App. G).

Per sampled position, unrolled K = 5 steps through the dynamics network:
- value: cross-entropy between the value logits and the two-hot support of z_{t+k} (k = 0..K);
- reward: cross-entropy of the value-prefix logits against the prefix targets (k = 1..K);
- policy: cross-entropy to the target visit distribution, softmax restricted to the game's legal actions;
- consistency: negative cosine between the online branch (projector + prediction head) of the predicted
  latent and the stop-gradient projection of the encoded real observation at t+k (SimSiam, EZ Sec. 4.1).
Steps past the end of a history are masked. Terms are importance-weighted, combined with the
coefficients 0.25 / 1 / 1 / 2 (Table 4; XTRA's code values), and the gradient into each predicted latent
is halved (MuZero's ``scale_gradient``). Following EZ code the total is scaled by 1/K before backward,
gradients are clipped to norm 5, and SGD (lr 0.2, momentum 0.9, wd 1e-4) warms up linearly, then decays
stepwise. Weight decay is the optimiser's, so c||theta|| of Eq. 3 is not a loss term. The online and
target views are augmented by a random shift, then a random intensity (EZ code's default pipeline).
``optimizer: adam`` is offered for CPU-scale runs (LightZero's classic-control setting).

``amp``: the forward pass of the loss runs under bf16 autocast (CUDA, and the CPU, where AMX / AVX512-BF16
make it 1.5-1.7x faster at the ``atari-cpu`` preset); every loss term is computed in
float32 from logits and projections cast to float32 first (the softmax / log-softmax over the 601-bin value
and reward supports, the cross-entropies, the consistency cosine, the priorities' decoded values). Backward
and the optimiser stay float32; bf16 needs no gradient scaler.

Batch norm (xfer, issue 13): in training each unroll step is normalised with its own batch statistics,
while EZ code's running statistics, which search and reanalyse use, average all K steps, weighted towards
the last ones; search then evaluates a different model than the one trained (measured on a cue bandit:
rewards separate in train mode, not in eval mode). ``model_bn_stats: first`` lets only the first model step
(root latents and their children) update the running statistics of g and f, which makes the two modes
agree where search spends most of its simulations; ``all`` (the default) is EZ code. Per-step batch
statistics also normalise away each depth's feature means, so the reward and value heads cannot tell how
deep a step is (measured on the cue bandit, 300 updates on random-policy data: the first step's predicted
reward 1.12 / 0.96 for right / wrong actions, the mean over all depths, where 1 / 0 is true).
``search`` also normalises every later step with the running statistics, exactly as search then
computes it, which keeps the depth in the features (the same check: 0.34 / 0.32, mean 0.25 true).

For XTRA (Eq. 1-2): call :meth:`Learner.losses` on the joint batch of all tasks, split its
``Losses.per_sample`` into per-task losses, combine them with :func:`weighted_total`, take per-task
gradients with :meth:`Learner.task_gradient`, then :meth:`Learner.step`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from xfer.muzero.augment import augment
from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.networks import EfficientZeroNet, autocast, set_bn_train, set_stat_momentum
from xfer.muzero.replay import PrioritizedReplay
from xfer.muzero.support import scalar_to_support, support_to_scalar
from xfer.muzero.targets import TrainBatch
from xfer.run.distributed import average_gradients, broadcast_buffers, gather_rows


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; the gradient is multiplied by ``scale`` (MuZero pseudocode)."""
    return x * scale + x.detach() * (1.0 - scale)


# The loss terms below cast their network outputs to float32 first (a no-op on float32 inputs): under
# ``amp`` the networks hand out bf16, whose 8-bit mantissa is too coarse for a 601-bin log-softmax.
def negative_cosine(online: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-cos(online, target) per row, in float32; the caller detaches ``target`` (stop-gradient branch)."""
    online, target = online.float(), target.float()
    return -(F.normalize(online, dim=-1, eps=1e-5) * F.normalize(target, dim=-1, eps=1e-5)).sum(-1)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``softmax(logits)`` to the distribution ``target``, in float32."""
    return -(target * torch.log_softmax(logits.float(), dim=-1)).sum(-1)


def masked_policy_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                                legal: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the softmax over legal actions only (illegal logits never matter), in float32."""
    logp = torch.log_softmax(logits.float().masked_fill(~legal, -1e9), dim=-1).masked_fill(~legal, 0.0)
    return -(target * logp).sum(-1)


@dataclass
class Losses:
    """Importance-weighted batch means of each term, their weighted sum, and new replay priorities.

    ``per_sample`` holds the same five quantities per position (``[B]``, importance-weighted, before the
    mean), so a joint batch of several tasks can be split into per-task losses of one forward pass (XTRA).
    ``diagnostics`` (per position ``[B]``, logged as batch means, never optimised): the importance weights
    ``weight_mean`` (prioritised replay scales every term of an update by their mean), each term unweighted
    ``raw_<term>``, and the entropy of the root policy targets ``target_policy_entropy`` against a uniform
    policy's over the legal actions ``uniform_policy_entropy`` (nats): targets near uniform teach the policy
    nothing. Per position, so XTRA's joint batch splits them per task as it splits the terms.
    """

    value: torch.Tensor
    reward: torch.Tensor
    policy: torch.Tensor
    consistency: torch.Tensor
    total: torch.Tensor
    priorities: np.ndarray
    per_sample: dict[str, torch.Tensor] = field(default_factory=dict)
    diagnostics: dict[str, torch.Tensor] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        names = ("value", "reward", "policy", "consistency", "total")
        terms = {k: float(getattr(self, k).detach()) for k in names}
        return {**terms, **{k: float(v.mean()) for k, v in self.diagnostics.items()}}


TERMS = ("value", "reward", "policy", "consistency")  # Eq. 3's loss terms, in the order they are summed


def loss_coefficients(cfg: EfficientZeroConfig) -> dict[str, float]:
    """Each loss term's weight in the total (Eq. 3; EfficientZero's code values by default)."""
    return {"value": cfg.value_loss_coeff, "reward": cfg.reward_loss_coeff, "policy": cfg.policy_loss_coeff,
            "consistency": cfg.consistency_coeff}


@torch.no_grad()
def loss_diagnostics(weights: torch.Tensor, unweighted: dict[str, torch.Tensor], root_policy: torch.Tensor,
                     legal: torch.Tensor) -> dict[str, torch.Tensor]:
    """What :class:`Losses` logs beside the terms (its ``diagnostics``, per position): from ``weights`` [B],
    the per-sample unweighted terms [B], the root policy targets [B, A] and the legal actions [B, A]."""
    target = root_policy.float()
    entropy = -(target * torch.log(target.clamp_min(1e-12))).sum(-1)
    return {"weight_mean": weights.float(),
            **{f"raw_{name}": term.detach().float() for name, term in unweighted.items()},
            "target_policy_entropy": entropy, "uniform_policy_entropy": torch.log(legal.sum(-1).float())}


def weighted_total(losses: Sequence[Losses], weights: Sequence[float]) -> torch.Tensor:
    """XTRA Eq. 1: sum_i eta_i L_i (the target task passes weight 1)."""
    return torch.stack([w * loss.total for loss, w in zip(losses, weights, strict=True)]).sum()


def make_optimizer(net: torch.nn.Module, cfg: EfficientZeroConfig) -> torch.optim.Optimizer:
    """SGD with momentum and L2 weight decay (EZ code), or Adam with decoupled weight decay (AdamW).

    Adam with an L2 term in the gradient (``torch.optim.Adam(weight_decay=...)``) normalises that term too:
    a weight whose loss gradient is small next to ``weight_decay * w`` moves towards zero by about ``lr``
    every step, whatever ``weight_decay`` is. With the 1/K-scaled, importance-weighted EfficientZero loss
    that stalled learning (issue 13: a 2-step unroll learned no action-dependent reward in 300 updates);
    decoupled decay shrinks every weight by ``lr * weight_decay`` per step, as SGD's L2 term does."""
    if cfg.optimizer == "adam":
        return torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


class Learner:
    """Owns the online network, its target copy (for reanalyse) and the optimiser."""

    def __init__(self, cfg: EfficientZeroConfig, net: EfficientZeroNet | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.net = (net or EfficientZeroNet(cfg)).to(self.device)
        self.target_net = copy.deepcopy(self.net).eval().requires_grad_(False)
        self.optimizer = make_optimizer(self.net, cfg)
        self.train_step = 0
        self.target_version = 0  # changes whenever target_net's weights do (BatchWorkers re-sends them)

    def learning_rate(self, step: int) -> float:
        """Linear warm-up, then lr * rate^floor((step - warm-up) / decay_steps) (EZ code's ``adjust_lr``)."""
        cfg = self.cfg
        if step < cfg.lr_warmup_steps:
            return cfg.lr * step / cfg.lr_warmup_steps
        return cfg.lr * cfg.lr_decay_rate ** ((step - cfg.lr_warmup_steps) // cfg.lr_decay_steps)

    def losses(self, batch: TrainBatch) -> Losses:
        """Forward pass of Eq. 3 on one batch (one task's batch, for XTRA); under bf16 autocast with ``amp``
        (CUDA or CPU), the loss terms in float32 (module doc)."""
        with autocast(self.cfg.amp, self.device, cpu=True):
            return self._losses(batch)

    def _losses(self, batch: TrainBatch) -> Losses:
        cfg, net = self.cfg, self.net
        net.train()
        K, stack, c, n = cfg.unroll_steps, cfg.frame_stack, cfg.frame_width, cfg.support_size
        if batch.obs.dtype == torch.uint8:  # images: scaled to [0, 1] and augmented; state vectors as given
            obs = batch.obs.float() / 255.0
            online_obs = augment(obs[:, :stack * c], cfg.augment_shift, cfg.augment_intensity)
            target_window = augment(obs[:, c:], cfg.augment_shift, cfg.augment_intensity)
        else:
            obs = batch.obs.float()
            online_obs, target_window = obs[:, :stack * c], obs[:, c:]
        legal = batch.legal

        latent = net.represent(online_obs)
        policy_logits, value_logits = net.prediction(latent)
        value = soft_cross_entropy(value_logits, scalar_to_support(batch.target_value[:, 0], n))
        policy = masked_policy_cross_entropy(policy_logits, batch.target_policy[:, 0], legal)
        reward = torch.zeros_like(value)
        consistency = torch.zeros_like(value)
        priorities = (support_to_scalar(value_logits.detach()) - batch.target_value[:, 0]).abs()

        with torch.no_grad():  # stop-gradient branch: projections of the encoded real next observations
            views = torch.stack([target_window[:, k * c:(k + stack) * c] for k in range(K)], dim=0)
            targets = net.project(net.represent(views.flatten(0, 1)), with_head=False).view(K, len(obs), -1)

        hidden = net.initial_hidden(len(obs))
        for k in range(K):
            if k == 1 and cfg.model_bn_stats == "first":  # later unroll steps leave the running stats alone
                set_stat_momentum(net.dynamics_net, 0.0)
                set_stat_momentum(net.prediction, 0.0)
            if k == 1 and cfg.model_bn_stats == "search":  # later steps normalised as search does
                set_bn_train(net.dynamics_net, False)
                set_bn_train(net.prediction, False)
            latent, hidden, prefix_logits = net.dynamics(latent, hidden, batch.actions[:, k])
            latent = scale_gradient(latent, cfg.dynamics_grad_scale)
            policy_logits, value_logits = net.prediction(latent)
            mask = batch.mask[:, k]
            value_target = scalar_to_support(batch.target_value[:, k + 1], n)
            prefix_target = scalar_to_support(batch.target_prefix[:, k], n)
            online = net.project(latent, with_head=True)
            consistency = consistency + negative_cosine(online, targets[k]) * mask
            value = value + soft_cross_entropy(value_logits, value_target) * mask
            policy_target = batch.target_policy[:, k + 1]
            policy = policy + masked_policy_cross_entropy(policy_logits, policy_target, legal) * mask
            reward = reward + soft_cross_entropy(prefix_logits, prefix_target) * mask
            if (k + 1) % cfg.lstm_horizon == 0:
                hidden = net.initial_hidden(len(obs))

        set_stat_momentum(net.dynamics_net, cfg.bn_momentum)
        set_stat_momentum(net.prediction, cfg.bn_momentum)
        set_bn_train(net.dynamics_net, True)
        set_bn_train(net.prediction, True)
        w = batch.weights
        diagnostics = loss_diagnostics(w, {"value": value, "reward": reward, "policy": policy,
                                           "consistency": consistency}, batch.target_policy[:, 0], legal)
        per_sample = {"value": w * value, "reward": w * reward, "policy": w * policy,
                      "consistency": w * consistency}
        terms = {name: t.mean() for name, t in per_sample.items()}
        coeff = loss_coefficients(cfg)
        total = sum(coeff[name] * terms[name] for name in TERMS)
        per_sample["total"] = sum(coeff[name] * per_sample[name] for name in TERMS)
        return Losses(**terms, total=total, priorities=priorities.cpu().numpy() + cfg.priority_eps,
                      per_sample=per_sample, diagnostics=diagnostics)

    def task_gradient(self, loss: torch.Tensor) -> torch.Tensor:
        """Flat gradient of ``loss`` over all trainable parameters, graph kept (XTRA Eq. 2)."""
        params = [p for p in self.net.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads,
                                                                                               strict=True)])

    def step(self, total_loss: torch.Tensor) -> dict[str, float]:
        """Backward (scaled by 1/K, EZ code), clip, SGD step with the scheduled lr, target refresh."""
        lr = self.learning_rate(self.train_step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        (total_loss / self.cfg.unroll_steps).backward()
        average_gradients(self.net.parameters())  # several processes: the mean over ranks
        grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()
        broadcast_buffers(self.net)  # rank 0's BatchNorm statistics everywhere, as DDP does
        self.train_step += 1
        if self.train_step % self.cfg.target_update_interval == 0:
            self.update_target()
        return {"lr": lr, "grad_norm": float(grad_norm)}

    def update(self, batch: TrainBatch, replay: PrioritizedReplay | None = None) -> dict[str, float]:
        """Single-task EfficientZero update; sends the new priorities back to ``replay``."""
        losses = self.losses(batch)
        stats = self.step(losses.total)
        if replay is not None:
            replay.update_priorities(*gather_rows(batch.game_ids, batch.steps, losses.priorities))
        return {**losses.as_dict(), **stats}

    def update_target(self) -> None:
        self.target_net.load_state_dict(self.net.state_dict())
        self.target_version += 1

    def state_dict(self) -> dict[str, object]:
        return {"net": self.net.state_dict(), "target_net": self.target_net.state_dict(),
                "optimizer": self.optimizer.state_dict(), "train_step": self.train_step}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.net.load_state_dict(state["net"])
        self.target_net.load_state_dict(state["target_net"])
        self.target_version += 1
        self.optimizer.load_state_dict(state["optimizer"])
        self.train_step = int(state["train_step"])
