"""DreamerAgent: the DreamerV2 world model and actor-critic with their optimisers, one training step, acting,
open-loop evaluation videos and checkpoints.

Batches follow :mod:`xfer.dreamer.world_model`'s convention: [B, L, ...] tensors (or numpy arrays) with
``image`` uint8, optional ``state``, ``action`` (``action[:, t]`` led to observation t, zero at ``is_first``),
``reward``, ``is_first``, ``is_terminal`` and optional ``cond``.

Seams for methods (all plain attributes, set after construction)::

    agent = DreamerAgent({"image": (64, 64, 3)}, act_dim=4, discrete=False, cfg=cfg, actor_extra_dim=50)
    # Vid2Act: distillation added to the world-model loss; its modules' params join the WM optimiser.
    agent.add_world_model_term(lambda out, batch: (alpha * distill(out.post, batch), {}),
                               distill.parameters())
    # Vid2Act: the actor reads the action-replay decoder's hidden activation for the selected label.
    agent.actor_extra = lambda start, cond: (lambda state, prev_action: replay(state, pick_label(start)))
    # CoWorld: value constraint with the source agent's critic, which gets no gradient.
    def value_constraint(imag, ret, value):
        source_value = source.behavior.frozen_value(imag.feat[:-1])
        return alpha * (torch.maximum(value, source_value) * ret.weight[:-1]).mean(), {}
    agent.critic_terms.append(value_constraint)
    # CoWorld / offline DV2: replace the reward of imagination.
    agent.reward_fn = lambda imag: my_reward(imag.feat)
    # CoWorld / Vid2Act: a 4-d domain in a 5-d agent; the padded entry is 0 in imagination and acting.
    agent.behavior.set_action_mask([True, True, True, True, False])

``train_step`` = ``train_world_model`` then ``train_behavior``; a method may call the two phases itself.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from xfer.dreamer.behavior import ActorCritic, ActorExtraFactory, CriticTerm, Imagination
from xfer.dreamer.config import DreamerConfig
from xfer.dreamer.loading import LoadReport, load_matching_tensors
from xfer.dreamer.observation import float_to_image
from xfer.dreamer.world_model import Batch, WorldModel, WorldModelOutputs
from xfer.nets.init import glorot_init_
from xfer.nets.precision import bf16_autocast
from xfer.nets.rssm import LatentState
from xfer.run.distributed import average_gradients

WorldModelTerm = Callable[[WorldModelOutputs, Batch], tuple[Tensor, dict[str, Tensor]]]
RewardFn = Callable[[Imagination], Tensor]


class AgentState(NamedTuple):
    """Recurrent acting state: the last posterior and the action taken from it."""

    latent: LatentState
    action: Tensor


class OpenLoopVideo(NamedTuple):
    """uint8 [N, L, H, W, C]: the real frames and the model's (reconstructed for the first ``context`` frames,
    then imagined from the real actions alone)."""

    truth: np.ndarray
    model: np.ndarray


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Turn off parameter gradients of ``module`` for the block (inputs still get gradients)."""
    flags = [(param, param.requires_grad) for param in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for param, flag in flags:
            param.requires_grad_(flag)


def make_adam(params: Iterable[Tensor], lr: float, cfg: DreamerConfig, device: torch.device
              ) -> torch.optim.Adam:
    """Adam (ε = ``adam_eps``) with the kernel ``optimizer_impl`` asks for (auto: fused on CUDA, foreach on
    CPU)."""
    impl = cfg.optimizer_impl
    if impl == "auto":
        impl = "fused" if device.type == "cuda" else "foreach"
    return torch.optim.Adam(params, lr=lr, eps=cfg.adam_eps, foreach=impl == "foreach" or None,
                            fused=impl == "fused" or None)


def _writable(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) and not value.flags.writeable else value


class DreamerAgent:
    def __init__(self, obs_shapes: Mapping[str, tuple[int, ...]], act_dim: int, discrete: bool,
                 cfg: DreamerConfig, cond_dim: int = 0, actor_extra_dim: int = 0,
                 device: str | torch.device = "cpu") -> None:
        """``obs_shapes``: {"image": (64, 64, C)} and/or {"state": (D,)}; ``act_dim``: action size (number of
        actions when ``discrete``); ``cond_dim``: size of the conditioning vector (0 = none);
        ``actor_extra_dim``: size of the actor's extra input (0 = none)."""
        self.cfg, self.act_dim, self.discrete = cfg, act_dim, discrete
        self.device = torch.device(device)
        self.world_model = WorldModel(obs_shapes, act_dim, cfg, cond_dim).to(self.device)
        self.behavior = ActorCritic(self.world_model.feat_dim, act_dim, discrete, cfg, actor_extra_dim
                                    ).to(self.device)
        if cfg.init == "glorot":
            glorot_init_(self.world_model)
            glorot_init_(self.behavior)
            self.behavior.slow_critic.load_state_dict(self.behavior.critic.state_dict())
        self.wm_opt = make_adam(self.world_model.parameters(), cfg.wm_lr, cfg, self.device)
        self.actor_opt = make_adam(self.behavior.actor.parameters(), cfg.actor_lr, cfg, self.device)
        self.critic_opt = make_adam(self.behavior.critic.parameters(), cfg.critic_lr, cfg, self.device)
        self.updates = 0
        self.world_model_terms: list[WorldModelTerm] = []
        self.critic_terms: list[CriticTerm] = []
        self.reward_fn: RewardFn | None = None
        self.actor_extra: ActorExtraFactory | None = None
        if cfg.compile:
            self._compile()

    def _compile(self) -> None:
        wm, ac = self.world_model, self.behavior
        for module in (wm.encoder, wm.decoder, wm.reward_head, wm.discount_head, wm.rssm.cell, ac.actor,
                       ac.critic, ac.slow_critic):
            if module is not None:
                module.compile()
        wm.rssm.compile_steps()

    def add_world_model_term(self, term: WorldModelTerm, params: Iterable[Tensor] = ()) -> None:
        """Add ``term(outputs, batch) -> (loss, metrics)`` to the world-model loss; ``params`` (e.g. Vid2Act's
        F_distill and F_weight) are then trained by the world-model optimiser."""
        self.world_model_terms.append(term)
        params = list(params)
        if params:
            self.wm_opt.add_param_group({"params": params})

    # -- training ------------------------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast of the training passes when ``amp`` (CUDA and CPU; heads and latent distributions
        hand back float32, as DreamerV2 code's mixed precision casts its distribution inputs)."""
        return bf16_autocast(self.cfg.amp, self.device)

    def to_tensors(self, data: Mapping[str, Any]) -> dict[str, Tensor]:
        """Move arrays/tensors to the device, keeping dtypes (uint8 images stay uint8). Read-only numpy arrays
        (some simulators return them) are copied first: torch cannot wrap them safely."""
        return {key: torch.as_tensor(_writable(value), device=self.device) for key, value in data.items()}

    def _step(self, opt: torch.optim.Optimizer) -> Tensor:
        params = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
        average_gradients(params)  # several processes: the mean over ranks (xfer.run.distributed)
        norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip, foreach=True)
        opt.step()
        if self.cfg.weight_decay:
            with torch.no_grad():
                torch._foreach_mul_(params, 1.0 - self.cfg.weight_decay)
        return norm.detach()

    def train_world_model(self, batch: Mapping[str, Any]) -> tuple[dict[str, Tensor], WorldModelOutputs]:
        """One world-model update (Eq. 2 plus the registered terms). Returns (metrics, outputs)."""
        batch = self.to_tensors(batch)
        with self._autocast():
            loss, metrics, out = self.world_model.loss(batch)
            for term in self.world_model_terms:
                term_loss, term_metrics = term(out, batch)
                loss = loss + term_loss
                metrics.update(term_metrics)
        self.wm_opt.zero_grad(set_to_none=True)
        loss.backward()
        metrics["wm/grad_norm"] = self._step(self.wm_opt)
        return metrics, out

    def imagine(self, out: WorldModelOutputs) -> Imagination:
        """Imagine from every posterior state of ``out`` (detached) with the current actor."""
        start = out.post.map(lambda x: x.detach().flatten(0, 1))
        cond = None if out.cond is None else out.cond.flatten(0, 1)
        return self.behavior.imagine(self.world_model.rssm, start, cond, self.actor_extra)

    def train_behavior(self, out: WorldModelOutputs, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """One actor and one critic update in imagination from the posteriors of ``out`` (Eq. 4-6), with the
        world model frozen."""
        behavior, wm = self.behavior, self.world_model
        behavior.update_slow_critic(self.updates)
        continues = 1.0 - torch.as_tensor(batch["is_terminal"], device=self.device).float().flatten()
        reinforce_only = behavior.rho == 1
        with frozen(wm), self._autocast():
            with torch.no_grad() if reinforce_only else contextlib.nullcontext():
                imag = self.imagine(out)
                reward = (self.reward_fn(imag) if self.reward_fn is not None
                          else wm.imagined_reward(imag.feat, imag.action, imag.cond))
                ret = behavior.returns(imag, reward, wm.discount(imag.feat, imag.cond), continues)
            actor_out = (behavior.actor_forward(imag.feat[:-1].detach(), imag.extra) if reinforce_only
                         else imag.actor_out)
            actor_loss, metrics = behavior.actor_loss(imag, ret, actor_out)
            critic_loss, value, critic_metrics = behavior.critic_loss(imag, ret)
            metrics.update(critic_metrics)
            for term in self.critic_terms:
                term_loss, term_metrics = term(imag, ret, value)
                critic_loss = critic_loss + term_loss
                metrics.update(term_metrics)
        self.actor_opt.zero_grad(set_to_none=True)
        self.critic_opt.zero_grad(set_to_none=True)
        (actor_loss + critic_loss).backward()
        metrics["actor/grad_norm"] = self._step(self.actor_opt)
        metrics["critic/grad_norm"] = self._step(self.critic_opt)
        metrics["imag/reward"] = ret.reward.detach().mean()
        metrics["imag/return"] = ret.target.detach().mean()
        self.updates += 1
        return metrics

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """World-model update then behaviour update; metrics as floats."""
        batch = self.to_tensors(batch)
        metrics, out = self.train_world_model(batch)
        metrics.update(self.train_behavior(out, batch))
        return {name: float(value) for name, value in metrics.items()}

    # -- acting --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def policy(self, obs: Mapping[str, Any], state: AgentState | None, explore: bool
               ) -> tuple[Tensor, AgentState]:
        """Batched acting: ``obs`` holds [N, ...] ``image``/``state``, optional ``is_first`` [N] and ``cond``
        [N, K]. Samples when ``explore``, else the mode. Discrete actions are one-hot [N, n]."""
        obs = self.to_tensors(obs)
        rssm = self.world_model.rssm
        cond = obs["cond"].float() if "cond" in obs else None
        embed = self.world_model.encode(obs, cond)
        count = embed.shape[0]
        if state is None:
            zero_action = torch.zeros(count, self.act_dim, device=self.device)
            state = AgentState(rssm.initial(count, self.device), zero_action)
        is_first = obs.get("is_first", torch.zeros(count, device=self.device))
        post, _ = rssm.obs_step(state.latent, state.action, embed, is_first, cond)
        feat = rssm.feat(post)
        extra = None
        if self.actor_extra is not None:
            _, prev_action = rssm.reset(state.latent, state.action, is_first)
            extra = self.actor_extra(post, cond)(post, prev_action)
        dist = self.behavior.dist(self.behavior.actor_forward(feat, extra))
        action = dist.rsample() if explore else dist.mode()
        return action, AgentState(post, action)

    def act(self, obs: Mapping[str, np.ndarray], state: AgentState | None, explore: bool
            ) -> tuple[np.ndarray, AgentState]:
        """:class:`xfer.interfaces.Agent`: numpy in, numpy out (discrete actions as integer indices)."""
        action, state = self.policy(obs, state, explore)
        out = action.argmax(-1) if self.discrete else action
        return out.cpu().numpy(), state

    @torch.no_grad()
    def openloop_video(self, batch: Mapping[str, Any], context: int = 5, sequences: int = 6) -> OpenLoopVideo:
        """DreamerV2's evaluation picture: observe the first ``context`` frames of up to ``sequences`` batch
        rows, then predict the rest open-loop from the real actions."""
        data = {key: value[:sequences] for key, value in self.to_tensors(batch).items()}
        wm = self.world_model
        label_only = "cond" in data and data["cond"].dim() == 2
        observed = {key: value if key == "cond" and label_only else value[:, :context]
                    for key, value in data.items()}
        out = wm.observe(observed)
        frames = [wm.decoder(out.feat, out.cond)["image"]]
        state = out.post.map(lambda x: x[:, -1])
        cond = None if out.cond is None else out.cond[:, -1]
        feats = []
        for t in range(context, data["action"].shape[1]):
            state = wm.rssm.img_step(state, data["action"][:, t].float(), cond)
            feats.append(wm.rssm.feat(state))
        if feats:
            frames.append(wm.decoder(torch.stack(feats, 1), cond)["image"])
        model = float_to_image(torch.cat(frames, 1).movedim(-3, -1))
        return OpenLoopVideo(data["image"].cpu().numpy(), model.cpu().numpy())

    # -- checkpoints ---------------------------------------------------------------------------------------
    def _modules(self) -> dict[str, nn.Module]:
        return {"world_model": self.world_model, "behavior": self.behavior}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"world_model": self.wm_opt, "actor": self.actor_opt, "critic": self.critic_opt}

    def state_dict(self) -> dict[str, Any]:
        """Modules, optimisers and the update counter."""
        return {**{name: module.state_dict() for name, module in self._modules().items()},
                "optimizers": {name: opt.state_dict() for name, opt in self._optimizers().items()},
                "updates": self.updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Exact restore (resume); register the same world-model terms first. Optimiser state is copied
        (``Optimizer.load_state_dict`` would otherwise share its tensors with the source)."""
        for name, module in self._modules().items():
            module.load_state_dict(state[name])
        for name, opt in self._optimizers().items():
            opt.load_state_dict(copy.deepcopy(state["optimizers"][name]))
        self.updates = int(state["updates"])

    def load_matching(self, state: Mapping[str, Any]) -> LoadReport:
        """Finetuning: copy every module tensor whose name and shape match; optimisers start fresh."""
        return load_matching_tensors(self._modules(), state)
