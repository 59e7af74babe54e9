"""The Dreamer training loops, shared by the ``dreamer`` baseline, Vid2Act's Stage 2 and CoWorld.

Two functions, parameterised by small objects instead of copied per method:

- :func:`train_online` — act in (vector) environments, random actions during the prefill, write every row
  to a disk replay under the run directory, make ``train_steps`` updates every ``train_every`` environment
  steps (after ``pretrain`` updates once the prefill is done), evaluate every ``recipe.eval.every``
  environment steps, checkpoint at episode boundaries (so a resumed run continues exactly).
- :func:`train_offline` — updates from a batch source (an offline dataset), evaluation in the environment
  every ``recipe.eval.every`` updates, checkpoints at any update.

What plugs in:

- ``learner`` (:class:`Learner`): ``act(obs, state, explore)``, ``train_step(batch) -> metrics``,
  ``state_dict()`` / ``load_state_dict()``. A :class:`~xfer.dreamer.agent.DreamerAgent` is one as it is;
  Vid2Act passes its student agent (distillation registered with ``add_world_model_term``, label selection
  in ``act``); CoWorld passes an object whose ``train_step`` makes a source update and, every K2 of them,
  K1 target updates from its own offline batch source.
- ``batches`` (:data:`BatchSource`): ``rng -> batch`` of [B, L] arrays; default: the replay (online).
- ``evaluator`` (:class:`EnvEvaluator` or any ``(step) -> metrics`` callable, optionally with ``video``):
  CoWorld evaluates its *target* agent in the target environment while the loop trains the source;
  :class:`~xfer.dreamer.value_curves.ValueEvaluator` adds the critic's value diagnostics.
- ``extra``: further ``{name: stateful}`` objects saved and restored with the checkpoint.

Example (CoWorld's source phase)::

    evaluator = EnvEvaluator(ctx, target_agent, ctx.make_env(target_task, seed), episodes=10)
    train_online(ctx, CoWorldLearner(source_agent, target_agent, target_batches), EnvBatch(source_env),
                 ReplayBuffer(ctx.rundir / "replay"), cfg.train, evaluator, extra={"eta": eta_schedule})

The checkpoint of either loop is ``{"learner", "loop", "replay", "extra", "meta", "torch_rng"}``; ``meta``
is saved verbatim (e.g. the shapes ``load_agent`` needs to rebuild the agent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gymnasium
import numpy as np
import torch

from xfer.data.replay import ReplayBuffer
from xfer.dreamer.method_config import TrainSchedule
from xfer.run.context import RunContext
from xfer.run.distributed import any_rank, same_on_all, share_batch
from xfer.run.evaluate import renders_images, run_episodes, video_frames, write_video

BatchSource = Callable[[np.random.Generator], Mapping[str, np.ndarray]]
TRAIN_KEYS = ("action", "reward", "is_first", "is_terminal")
ROW_KEYS = ("image", "state", "is_first", "is_last", "is_terminal")


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> Any: ...


class Learner(Stateful, Protocol):
    def act(self, obs: Mapping[str, np.ndarray], state: Any, explore: bool) -> tuple[np.ndarray, Any]: ...

    def train_step(self, batch: Mapping[str, Any]) -> Mapping[str, float]: ...


def replay_batches(buffer: ReplayBuffer, batch: int, length: int, obs_keys: Sequence[str] = ("image",)
                   ) -> BatchSource:
    """Uniform [batch, length] sequences of ``buffer`` with only the keys a world model reads."""
    keys = (*obs_keys, *TRAIN_KEYS)

    def sample(rng: np.random.Generator) -> dict[str, np.ndarray]:
        data = buffer.sample(batch, length, rng)
        return {key: data[key] for key in keys if key in data}

    return sample


class EnvBatch:
    """One gymnasium environment or a vector environment as ``n`` batched streams with explicit resets.

    Observations come back batched (leading axis = environment); continuous actions are [n, A] floats,
    discrete ones [n] integers (stored one-hot in the replay, the episode format's convention)."""

    def __init__(self, env: Any, action_repeat: int = 1) -> None:
        self.env, self.repeat = env, action_repeat
        self.vector = isinstance(env, gymnasium.vector.VectorEnv)
        self.n = env.num_envs if self.vector else 1
        self.space = env.single_action_space if self.vector else env.action_space
        self.discrete = isinstance(self.space, gymnasium.spaces.Discrete)
        self.act_dim = int(self.space.n) if self.discrete else int(np.prod(self.space.shape))

    def reset(self, seeds: Sequence[int]) -> dict[str, np.ndarray]:
        if self.vector:
            return self.env.reset(seed=list(seeds))[0]
        return {key: np.asarray(value)[None] for key, value in self.env.reset(seed=seeds[0])[0].items()}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Batched (observation, reward, success); a finished vector environment resets on its next step."""
        if self.vector:
            obs, reward, _, _, info = self.env.step(action)
            success = np.asarray(info.get("success", np.zeros(self.n)), bool) & np.asarray(
                info.get("_success", np.ones(self.n)), bool)
        else:
            obs, reward, _, _, info = self.env.step(action[0])
            obs = {key: np.asarray(value)[None] for key, value in obs.items()}
            reward, success = np.array([reward]), np.array([bool(info.get("success", False))])
        return obs, np.asarray(reward, np.float32), success

    def zero_actions(self) -> np.ndarray:
        return np.zeros(self.n, np.int64) if self.discrete else np.zeros((self.n, self.act_dim), np.float32)

    def random_actions(self, rng: np.random.Generator) -> np.ndarray:
        if self.discrete:
            return rng.integers(self.act_dim, size=self.n)
        low, high = self.space.low.reshape(-1), self.space.high.reshape(-1)
        return rng.uniform(low, high, (self.n, self.act_dim)).astype(np.float32)

    def store(self, replay: ReplayBuffer, obs: Mapping[str, np.ndarray], action: np.ndarray,
              reward: np.ndarray, success: np.ndarray) -> None:
        """Append one row per environment: ``action`` led to ``obs`` (zeroed where ``obs`` is a reset)."""
        action = np.eye(self.act_dim, dtype=np.float32)[action] if self.discrete else action
        first = obs["is_first"].astype(bool)
        for i in range(self.n):
            row = {key: obs[key][i] for key in ROW_KEYS if key in obs}
            row.update(action=np.where(first[i], 0, action[i]).astype(np.float32), success=bool(success[i]),
                       reward=np.float32(0 if first[i] else reward[i]))
            replay.add_step(row, worker=i)


class EnvEvaluator:
    """``run_episodes`` of ``agent`` in ``env`` (deterministic actions), reset seeds from ``ctx.rng``."""

    def __init__(self, ctx: RunContext, agent: Any, env: Any, episodes: int) -> None:
        self.ctx, self.agent, self.env, self.episodes = ctx, agent, env, episodes

    def __call__(self, step: int = 0) -> dict[str, float]:
        """The evaluation at the loop's ``step`` (unused here; evaluators writing files name them by it)."""
        metrics, _ = run_episodes(self.agent, self.env, self.episodes, int(self.ctx.rng.integers(2**31)))
        return metrics

    def video(self, path: Path, step: int) -> Path | None:
        """One episode as a video (real frames, and the world model's open-loop prediction when the agent
        has ``openloop``), written to ``path`` and TensorBoard; None when the environment renders no images
        (``env.pixels: false``)."""
        if not renders_images(self.env):
            self.ctx.say("no evaluation video: the environment renders no images (env.pixels: false)")
            return None
        _, recorded = run_episodes(self.agent, self.env, 1, int(self.ctx.rng.integers(2**31)), record=True)
        frames = video_frames(self.agent, recorded[0])
        self.ctx.logger.video("eval/video", frames, step)
        return write_video(path, frames)


class EvalAgent:
    """A :class:`~xfer.dreamer.agent.DreamerAgent` as ``xfer eval`` and :class:`EnvEvaluator` use it: ``act``,
    plus ``openloop(images, actions)`` (DreamerV2's open-loop video: 5 frames observed, the rest imagined
    from the actions) when the world model reads and decodes images only."""

    def __init__(self, agent: Any, context: int = 5) -> None:
        self.agent, self.context = agent, context
        wm = agent.world_model
        if wm.encoder.mlp is None and wm.decoder.conv is not None:
            self.openloop = self._openloop

    def act(self, obs: Mapping[str, np.ndarray], state: Any, explore: bool) -> tuple[np.ndarray, Any]:
        return self.agent.act(obs, state, explore)

    def _openloop(self, images: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """``images`` [T, H, W, C], ``actions`` [T, ...] (``actions[t]`` taken at frame t) → predictions."""
        if self.agent.discrete:
            actions = np.eye(self.agent.act_dim, dtype=np.float32)[actions.astype(np.int64)]
        led_to = np.concatenate([np.zeros_like(actions[:1]), actions[:-1]]).astype(np.float32)
        is_first = np.arange(len(images)) == 0
        batch = {"image": images[None], "action": led_to[None], "is_first": is_first[None]}
        return self.agent.openloop_video(batch, context=self.context, sequences=1).model[0]


@dataclass
class LoopState:
    """The loop's counters and the running means of the current logging window (checkpointed, so a
    resumed run logs exactly what the uninterrupted one does)."""

    env_steps: int = 0
    updates: int = 0
    episodes: int = 0
    next_eval: int = 0
    next_log: int = 0
    last_eval: int = -1
    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0

    def add(self, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
        self.count += 1

    def means(self) -> dict[str, float]:
        means = {key: value / self.count for key, value in self.sums.items()} if self.count else {}
        self.sums, self.count = {}, 0
        return means


class _Run:
    """What both loops share: restore, save, log, evaluate, finish."""

    def __init__(self, ctx: RunContext, learner: Learner, evaluator: Callable[[], dict[str, float]] | None,
                 replay: ReplayBuffer | None, extra: Mapping[str, Stateful] | None,
                 meta: Mapping[str, Any] | None, online: bool) -> None:
        self.ctx, self.learner, self.evaluator, self.replay = ctx, learner, evaluator, replay
        self.online = online
        self.extra, self.meta = dict(extra or {}), dict(meta or {})
        self.loop = LoopState(next_eval=ctx.recipe.eval.every, next_log=ctx.recipe.logging.every)
        self.clock = (time.monotonic(), 0, 0)
        saved = ctx.restore()
        if saved is not None:
            learner.load_state_dict(saved["learner"])
            self.loop = LoopState(**saved["loop"])
            if replay is not None:
                replay.load_state_dict(saved["replay"])
            for name, obj in self.extra.items():
                obj.load_state_dict(saved["extra"][name])
            torch.set_rng_state(saved["torch_rng"])  # building the models drew from it after the restore
            self.clock = (time.monotonic(), self.loop.env_steps, self.loop.updates)

    def save(self, step: int) -> None:
        self.ctx.save(step, {
            "learner": self.learner.state_dict(), "loop": asdict(self.loop),
            "replay": None if self.replay is None else self.replay.state_dict(),
            "extra": {name: obj.state_dict() for name, obj in self.extra.items()}, "meta": self.meta,
            "torch_rng": torch.get_rng_state()})

    def log_train(self, step: int) -> None:
        """Window means of the update metrics, and throughput since the last log."""
        now, env0, upd0 = self.clock
        elapsed = max(time.monotonic() - now, 1e-9)
        metrics = self.loop.means()
        if self.online:
            metrics["perf/env_steps_per_s"] = (self.loop.env_steps - env0) / elapsed
        metrics["perf/updates_per_s"] = (self.loop.updates - upd0) / elapsed
        self.clock = (time.monotonic(), self.loop.env_steps, self.loop.updates)
        self.ctx.logger.log(step, metrics, **self.counters())

    def counters(self) -> dict[str, int]:
        """The counters logged beside ``step``: an offline loop takes no environment steps, so it logs only
        ``updates`` and TensorBoard plots it against ``step`` (its update count), not at env_steps 0."""
        if self.online:
            return {"env_steps": self.loop.env_steps, "updates": self.loop.updates}
        return {"updates": self.loop.updates}

    def evaluate(self, step: int) -> None:
        if self.evaluator is None or self.loop.last_eval == step:
            return
        metrics = self.evaluator(step)
        self.loop.last_eval = step
        self.ctx.logger.log(step, metrics, **self.counters())
        self.ctx.progress.update(**{"eval return": f"{metrics.get('eval/return', float('nan')):.1f}"})
        self.ctx.say(f"step {step}: " + ", ".join(f"{k} {v:.3g}" for k, v in metrics.items()))

    def maybe_evaluate(self, step: int) -> None:
        if step >= self.loop.next_eval:
            self.evaluate(step)
            every = self.ctx.recipe.eval.every
            self.loop.next_eval = (step // every + 1) * every

    def finish(self, step: int) -> None:
        """Final evaluation, the evaluation video (``recipe.eval.video``), and the last checkpoint."""
        self.evaluate(step)
        video = getattr(self.evaluator, "video", None)
        if self.ctx.recipe.eval.video and video is not None:
            path = video(self.ctx.rundir / "videos" / f"eval-{step}.mp4", step)
            if path is not None:
                self.ctx.say(f"evaluation video: {path}")
        self.save(step)


def train_online(ctx: RunContext, learner: Learner, envs: EnvBatch, replay: ReplayBuffer,
                 schedule: TrainSchedule, evaluator: Callable[[], dict[str, float]] | None = None, *,
                 batches: BatchSource | None = None, obs_keys: Sequence[str] = ("image",),
                 extra: Mapping[str, Stateful] | None = None, meta: Mapping[str, Any] | None = None,
                 phase: str = "online") -> None:
    """DreamerV2's online loop (Hafner et al. 2021, Algorithm 1 of DreamerV1 with V2's schedule).

    The unit of acting is a *round*: every environment is reset with a seed from ``ctx.rng`` and stepped
    until each has finished one episode (an environment that finishes early starts an unrecorded episode).
    Updates happen inside rounds as they fall due (:meth:`TrainSchedule.updates_due`); evaluation,
    checkpoints and stopping at round ends, where no environment state needs saving.
    """
    run = _Run(ctx, learner, evaluator, replay, extra, meta, online=True)
    loop, every_log = run.loop, ctx.recipe.logging.every
    batches = batches or replay_batches(replay, schedule.batch, schedule.seq_len, obs_keys)
    started = loop.updates  # several processes: each rank's batch stream is derived from it
    ctx.progress.update(phase=phase, total=schedule.env_steps, step=loop.env_steps)
    shown = time.monotonic()
    while loop.env_steps < schedule.env_steps:
        obs = envs.reset([int(ctx.rng.integers(2**31)) for _ in range(envs.n)])
        envs.store(replay, obs, envs.zero_actions(), np.zeros(envs.n, np.float32), np.zeros(envs.n, bool))
        state, finished = None, np.zeros(envs.n, bool)
        totals, lengths, wins = np.zeros(envs.n), np.zeros(envs.n, np.int64), np.zeros(envs.n, bool)
        while not finished.all():
            if loop.env_steps < schedule.prefill:
                action = envs.random_actions(ctx.rng)
            else:
                action, state = learner.act(obs, state, True)
                action = same_on_all(action)  # several processes: rank 0's actions everywhere
            obs, reward, success = envs.step(action)
            envs.store(replay, obs, action, reward, success)
            loop.env_steps += envs.n * envs.repeat
            first = obs["is_first"].astype(bool)
            totals, lengths, wins = (np.where(first, 0, totals + reward), np.where(first, 0, lengths + 1),
                                     ~first & (wins | success))
            for i in np.flatnonzero(obs["is_last"].astype(bool) & ~finished):
                loop.episodes += 1
                ctx.logger.log(loop.env_steps, {"train/return": totals[i], "train/length": lengths[i],
                                                "train/success": float(wins[i])}, env_steps=loop.env_steps)
                ctx.progress.update(**{"return": float(totals[i]), "episodes": loop.episodes})
            finished |= obs["is_last"].astype(bool)
            while loop.updates < schedule.updates_due(loop.env_steps) and replay.num_sequences(
                    schedule.seq_len) > 0:
                loop.add(learner.train_step(share_batch(batches, ctx.rng, started)))
                loop.updates += 1
            if loop.env_steps >= loop.next_log:
                run.log_train(loop.env_steps)
                loop.next_log = (loop.env_steps // every_log + 1) * every_log
            if time.monotonic() - shown >= 0.5:
                ctx.progress.update(step=loop.env_steps, env_steps=loop.env_steps, updates=loop.updates)
                shown = time.monotonic()
        step = loop.env_steps
        run.maybe_evaluate(step)
        if any_rank(ctx.should_stop(step)) and step < schedule.env_steps:
            run.save(step)
            return
        if ctx.checkpoint_due(step) and step < schedule.env_steps:
            run.save(step)
    run.finish(loop.env_steps)


def train_offline(ctx: RunContext, learner: Learner, batches: BatchSource, schedule: TrainSchedule,
                  evaluator: Callable[[], dict[str, float]] | None = None, *,
                  extra: Mapping[str, Stateful] | None = None, meta: Mapping[str, Any] | None = None,
                  phase: str = "offline") -> None:
    """Offline training: ``schedule.updates`` updates on ``batches`` (e.g. :func:`replay_batches` of a
    read-only dataset), evaluating in the environment every ``recipe.eval.every`` updates. The loop's step
    is the update count; checkpoints may fall on any update."""
    run = _Run(ctx, learner, evaluator, None, extra, meta, online=False)
    loop, every_log = run.loop, ctx.recipe.logging.every
    ctx.progress.update(phase=phase, total=schedule.updates, step=loop.updates)
    started = loop.updates
    while loop.updates < schedule.updates:
        loop.add(learner.train_step(share_batch(batches, ctx.rng, started)))
        loop.updates += 1
        step = loop.updates
        if step % every_log == 0:
            run.log_train(step)
        ctx.progress.update(step=step, updates=step)
        if step < schedule.updates:
            run.maybe_evaluate(step)
            if any_rank(ctx.should_stop(step)):
                run.save(step)
                return
            if ctx.checkpoint_due(step):
                run.save(step)
    run.finish(loop.updates)
