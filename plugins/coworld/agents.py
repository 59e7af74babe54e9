"""Building CoWorld's agents and wiring the three stages into the DreamerV2 backbone's seams.

Both domains use DreamerV2 agents of identical architecture (:class:`xfer.dreamer.agent.DreamerAgent`):

- Stage A (:class:`~xfer_plugins.coworld.alignment.StateAlignment`) is a *world-model term* of the target
  agent (``add_world_model_term``), reading the target's ``WorldModelOutputs.embed`` and the source
  encoders' embeddings of the same batch;
- Stage B (:class:`~xfer_plugins.coworld.reward.RewardAlignment`) is a world-model term of every source
  agent, sampling its own target batch;
- Stage C (:class:`~xfer_plugins.coworld.value.ValueConstraint`) is a *critic term* of the target agent
  (``critic_terms``), reading the selected source's critic through ``ActorCritic.frozen_value``.

Action spaces (**gap** in the authors' code, **xfer** decision in METHODS.md): every agent gets the largest
action size among the target dataset and the source environments. A source environment with fewer action
dimensions is made with ``env.pad_action_to`` (:class:`xfer.envs.wrappers.PadAction`: the extra entries
are dropped before the simulator) and the router zeroes the padded entries of every action it passes on, so
the source's replay holds zero-padded actions; target batches with fewer dimensions are zero-padded when
sampled; the evaluated target agent emits only the target environment's own dimensions. Every agent's actor
masks its domain's padded entries (:meth:`xfer.dreamer.behavior.ActorCritic.set_action_mask`): they are
exactly 0 in imagination as in acting and leave the actor's log-probability and entropy, so the policy,
critic and world model are never fitted to an action entry the simulator does not have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
import torch
from torch import Tensor
from xfer_plugins.coworld.alignment import StateAlignment
from xfer_plugins.coworld.config import CoWorldConfig
from xfer_plugins.coworld.reward import EtaSchedule, RewardAlignment
from xfer_plugins.coworld.selection import SourceSelector
from xfer_plugins.coworld.value import ValueConstraint

from xfer.data.replay import ReplayBuffer
from xfer.dreamer.agent import DreamerAgent
from xfer.dreamer.config import DreamerConfig
from xfer.dreamer.loop import TRAIN_KEYS, EnvBatch, EvalAgent
from xfer.errors import XferError
from xfer.recipe import TaskSpec
from xfer.run.context import RunContext
from xfer.run.distributed import share_batch


def pad_actions(actions: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad the last axis of ``actions`` to ``size`` (unchanged when it already has that size)."""
    missing = size - actions.shape[-1]
    if missing < 0:
        raise XferError(f"actions of size {actions.shape[-1]} cannot be padded to the smaller size {size}")
    if missing == 0:
        return actions
    return np.concatenate([actions, np.zeros((*actions.shape[:-1], missing), actions.dtype)], -1)


def task_name(task: TaskSpec) -> str:
    return f"{task.suite}/{task.task}"


def native_action_size(env: gymnasium.Env) -> int:
    """The action size of ``env`` without :class:`PadAction` (the size the simulator reads)."""
    if hasattr(env, "inner_size"):
        return int(env.inner_size)
    space = env.action_space
    if not isinstance(space, gymnasium.spaces.Box) or len(space.shape) != 1:
        raise XferError(f"coworld needs 1-d continuous actions, this environment has {space}")
    return int(space.shape[0])


def probe_action_size(ctx: RunContext, task: TaskSpec, seed: int) -> int:
    """The simulator's own action size for ``task`` (an environment is made without padding and closed)."""
    from xfer.envs.make import make_env

    settings = ctx.env_settings(task).model_copy(update={"pad_action_to": None})
    env = make_env(task.suite, task.task, settings, seed, registry=ctx.registry)
    try:
        return native_action_size(env)
    finally:
        env.close()


def make_source_env(ctx: RunContext, task: TaskSpec, act_dim: int, native: int, seed: int, n: int,
                    repeat: int) -> EnvBatch:
    """The source's training environment(s), padded to ``act_dim`` actions when the simulator has fewer."""
    from xfer.envs.make import make_env, make_vector_env

    settings = ctx.env_settings(task)
    if native < act_dim:
        settings = settings.model_copy(update={"pad_action_to": act_dim})
    if n == 1 and settings.workers == 1:
        env = make_env(task.suite, task.task, settings, seed, registry=ctx.registry)
    else:
        env = make_vector_env(task.suite, task.task, settings, seed, max(n, settings.workers), ctx.registry)
    return EnvBatch(env, repeat)


class TargetData:
    """Batches of the offline target dataset: numpy for the target agent, tensors for Stage B.

    ``batch`` is the global batch: :meth:`share` (and :meth:`tensors`, Stage B's batches) give this rank's
    rows of a batch drawn from its own generator (:func:`xfer.run.distributed.share_batch`: derived from
    the run's seed, the rank and ``started``, the update count the process started from), the whole batch of
    ``sample()`` on one process; the learner shares its target batches the same way."""

    def __init__(self, path: Any, max_episodes: int | None, batch: int, length: int, act_dim: int,
                 obs_keys: Sequence[str], rng: np.random.Generator) -> None:
        self.buffer = ReplayBuffer(path, readonly=True, max_episodes=max_episodes)
        self.batch, self.length, self.act_dim, self.rng = batch, length, act_dim, rng
        self.keys = (*obs_keys, *TRAIN_KEYS)
        self.started = 0  # set by the learner when it restores (several processes: see share_batch)

    def sample(self, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        data = self.buffer.sample(self.batch, self.length, rng if rng is not None else self.rng)
        out = {key: data[key] for key in self.keys if key in data}
        out["action"] = pad_actions(out["action"].astype(np.float32), self.act_dim)
        return out

    def share(self) -> dict[str, np.ndarray]:
        """This rank's share of a global target batch (the whole ``sample(rng)`` on one process)."""
        return share_batch(self.sample, self.rng, self.started)

    def tensors(self, device: torch.device) -> dict[str, Tensor]:
        return {key: torch.as_tensor(value, device=device) for key, value in self.share().items()}


def build_agent(obs_shapes: Mapping[str, Sequence[int]], act_dim: int, model: DreamerConfig,
                device: Any, native: int | None = None, **overrides: Any) -> DreamerAgent:
    """A DreamerV2 agent of ``act_dim`` actions whose entries from ``native`` on are padding (masked)."""
    cfg = DreamerConfig.model_validate({**model.model_dump(), "preset": None, **overrides})
    shapes = {key: tuple(shape) for key, shape in obs_shapes.items()}
    agent = DreamerAgent(shapes, act_dim, False, cfg, device=device)
    if native is not None:
        agent.behavior.set_action_mask([i < native for i in range(act_dim)])
    return agent


@dataclass
class Stages:
    """The stage objects registered in the agents' seams (``None`` where a stage is switched off)."""

    alignment: StateAlignment | None
    selector: SourceSelector | None
    constraint: ValueConstraint | None
    reward_terms: list[RewardAlignment] = field(default_factory=list)

    @property
    def selected(self) -> int:
        return self.alignment.selected if self.alignment is not None else 0


def wire_stages(cfg: CoWorldConfig, target: DreamerAgent, sources: Sequence[DreamerAgent],
                names: Sequence[str], target_data: TargetData) -> Stages:
    """Register Stage A/B/C in the agents' seams as ``cfg.stages`` asks. With several sources the
    alignment term also performs the selection (Appendix C), even when Stage A itself is switched off
    (then with weight 0)."""
    multi = len(sources) > 1
    selector = SourceSelector(names) if multi else None
    alignment = None
    if cfg.stages.state_alignment or multi:
        scale = cfg.state_alignment_scale if cfg.stages.state_alignment else 0.0
        alignment = StateAlignment([s.world_model for s in sources], scale, selector, names)
        target.add_world_model_term(alignment)
    stages = Stages(alignment, selector, None)
    if cfg.stages.value_constraint:
        stages.constraint = ValueConstraint(lambda: sources[stages.selected].behavior,
                                            cfg.value_constraint_scale, cfg.value_constraint_variant)
        target.critic_terms.append(stages.constraint)
    if cfg.stages.reward_alignment:
        for source in sources:
            eta = EtaSchedule(cfg.eta.start, cfg.eta.floor, cfg.eta_steps(len(sources)), cfg.eta.shape)
            term = RewardAlignment(source.world_model, cfg.reward_mix, eta,
                                   lambda source=source: target_data.tensors(source.device))
            term.enabled = False  # switched on after the source's warm-up
            source.add_world_model_term(term)
            stages.reward_terms.append(term)
    return stages


class TargetEvalAgent(EvalAgent):
    """The target agent for evaluation: emits only the target environment's ``native`` action entries
    (the padded ones are dropped, as :class:`PadAction` would) and pads recorded actions back for the
    open-loop video."""

    def __init__(self, agent: DreamerAgent, native: int) -> None:
        super().__init__(agent)
        self.native = native

    def act(self, obs: Mapping[str, np.ndarray], state: Any, explore: bool) -> tuple[np.ndarray, Any]:
        action, state = self.agent.act(obs, state, explore)
        return action[..., : self.native], state

    def _openloop(self, images: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return super()._openloop(images, pad_actions(actions.astype(np.float32), self.agent.act_dim))
