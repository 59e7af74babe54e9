"""The online EfficientZero loop shared by the ``efficientzero`` and ``xtra`` methods.

- :class:`~xfer.muzero.agent.SelfPlay`: environments of one task searched by one batched MCTS.
- :class:`OnlineLoop`: self-play, prioritised replay, training updates spread evenly over the agent steps
  (``training_steps`` updates in total, starting once the replay holds ``min_replay_size`` transitions,
  as EZ code throttles its actors against the learner), an acting network refreshed every 100 updates
  (Table 4), batched evaluation on whole games with the game's reward, checkpoints. With
  ``selfplay.workers`` the environments play in processes beside the learner, one chunk of
  ``worker_steps`` agent steps ahead (:mod:`xfer.muzero.selfplay_workers`).
- :func:`efficientzero_update`: one EfficientZero update on a reanalysed batch (targets from the target
  network, Table 4's reanalyse ratio 1).

Exact resume (see :mod:`xfer.run.context`): a checkpoint holds the learner, the acting network, the
replay (on disk, ``replay-<step>/`` next to the checkpoints, kept as long as its checkpoint), and the
self-play state (see :meth:`xfer.muzero.agent.SelfPlay.restore`).

This module imports only numpy and pydantic at import time, so method configs can use
:class:`SelfPlaySettings` without importing torch.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from xfer.run.phase_clock import PhaseClock

if TYPE_CHECKING:
    from xfer.envs.settings import EnvSettings
    from xfer.muzero.agent import MuZeroAgent, SelfPlay
    from xfer.muzero.batch_workers import BatchWorkers
    from xfer.muzero.config import EfficientZeroConfig
    from xfer.muzero.learner import Learner
    from xfer.muzero.replay import PrioritizedReplay
    from xfer.muzero.selfplay_workers import SelfPlayWorkers
    from xfer.recipe import TaskSpec
    from xfer.run.context import RunContext


class SelfPlaySettings(BaseModel):
    """Online interaction with the target task (Atari100k: 100k agent steps, XTRA Table 4)."""

    model_config = ConfigDict(extra="forbid")

    env_steps: int = Field(100_000, ge=1, description="agent steps on the task (400k frames at skip 4)")
    num_envs: int = Field(4, ge=1, description="environments searched together in one batched MCTS (xfer)")
    segment_length: int = Field(400, ge=1, description="store long episodes in segments of this length (EZ)")
    actor_update_interval: int = Field(100, ge=1, description="refresh the acting network every N updates")
    temperatures: tuple[float, float, float] = Field(
        (1.0, 0.5, 0.25), description="visit-count temperature for <50%, <75%, rest of training (EZ code)")
    eval_envs: int = Field(8, ge=1, description="evaluation episodes run in parallel")
    workers: int = Field(
        0, ge=0, description="processes that play the environments beside the learner, num_envs / workers "
                             "each (EZ code's self-play actors, xfer.muzero.selfplay_workers); 0: the "
                             "learner's process plays, one agent step between updates")
    worker_steps: int = Field(25, ge=1, description="agent steps per environment that workers play per "
                                                    "request, while the learner trains the previous ones'"
                                                    " updates (the acting network lags by this much)")
    train_env_options: dict[str, Any] = Field(
        default_factory=lambda: {"train": True},
        description="env options added for self-play (atari: episodic life and reward clipping on)")
    eval_env_options: dict[str, Any] = Field(
        default_factory=lambda: {"train": False},
        description="env options added for evaluation (atari: the game's reward over whole games)")


def task_settings(ctx: RunContext, task: TaskSpec, options: dict[str, Any]) -> EnvSettings:
    """The recipe's environment settings for ``task`` plus ``options`` (training or evaluation)."""
    settings = ctx.recipe.env_for(task)
    return settings.model_copy(update={"options": {**settings.options, **options}})


def make_task_env(ctx: RunContext, task: TaskSpec, seed: int, options: dict[str, Any]) -> Any:
    """One environment of ``task`` with the recipe's settings plus ``options`` (training or evaluation)."""
    from xfer.envs.make import make_env

    return make_env(task.suite, task.task, task_settings(ctx, task, options), seed, registry=ctx.registry)


def probe_task(ctx: RunContext, task: TaskSpec, cfg: EfficientZeroConfig,
               options: dict[str, Any]) -> tuple[EfficientZeroConfig, np.ndarray]:
    """``cfg`` fitted to one environment of ``task`` (:func:`~xfer.muzero.agent.fit_to_env`: actions,
    network, state length, image channels) and that environment's legal-action mask over the full head."""
    from xfer.muzero.agent import fit_to_env, legal_mask_of

    env = make_task_env(ctx, task, 0, options)
    try:
        fitted = fit_to_env(cfg, env)
        return fitted, legal_mask_of(env, fitted.n_actions)
    finally:
        env.close()


# ---- evaluation -------------------------------------------------------------------------------------
def evaluate(agent: MuZeroAgent, envs: list[Any], seeds: np.ndarray) -> dict[str, float]:
    """Greedy search (no noise, most visited action) for ``len(seeds)`` episodes over the given envs."""
    from xfer.muzero.agent import FrameStacker, network_input

    queue = [int(s) for s in seeds]
    returns: list[float] = []
    active: dict[int, tuple[Any, float]] = {}  # env index -> (observation, return so far)
    stackers = {i: FrameStacker(agent.cfg) for i in range(len(envs))}
    for i, env in enumerate(envs[:len(queue)]):
        active[i] = (env.reset(seed=queue.pop(0))[0], 0.0)
    while active:
        ids = sorted(active)
        stacked = np.concatenate([network_input({k: np.asarray(v)[None] for k, v in active[i][0].items()},
                                                stackers[i]) for i in ids])
        actions, _ = agent.search(stacked, explore=False)
        for i, action in zip(ids, actions, strict=True):
            obs, reward, terminated, truncated, _ = envs[i].step(int(action))
            total = active[i][1] + float(reward)
            if not (terminated or truncated):
                active[i] = (obs, total)
                continue
            returns.append(total)
            del active[i]
            if queue:
                stackers[i] = FrameStacker(agent.cfg)
                active[i] = (envs[i].reset(seed=queue.pop(0))[0], 0.0)
    return {"eval/return": float(np.mean(returns)), "eval/return_std": float(np.std(returns)),
            "eval/episodes": float(len(returns))}


# ---- training ---------------------------------------------------------------------------------------
def efficientzero_update(learner: Learner, replay: PrioritizedReplay, rng: np.random.Generator,
                         batch_size: int | None = None,
                         workers: BatchWorkers | None = None) -> dict[str, float]:
    """One EfficientZero update (Eq. 3): sample by priority, reanalyse with the target network (TD horizons
    off-policy corrected by the positions' ages), SGD. With ``workers`` the reanalyse runs in their
    processes, ahead of the learner (:mod:`xfer.muzero.batch_workers`)."""
    from xfer.muzero.targets import TargetSource, gather_job, make_batch
    from xfer.run.distributed import rank_rng, share_indices, world

    cfg = learner.cfg
    rng = rank_rng(rng, learner.train_step)  # several processes: this rank's stream and share of the batch
    source = TargetSource(learner.target_net)

    def sample() -> Any:
        positions = replay.sample(batch_size or cfg.batch_size, rng, replay.beta(learner.train_step))
        if world() > 1:
            share = share_indices(len(positions.game_ids))
            keys = ("game_ids", "steps", "weights")
            positions = type(positions)(*(getattr(positions, key)[share] for key in keys))
        return positions

    if workers is None:
        positions = sample()
        batch = make_batch(replay, positions, cfg, source, rng, learner.device,
                           ages=replay.ages(positions.game_ids, positions.steps))
    else:
        def gather() -> Any:
            positions = sample()
            return gather_job(replay, positions, cfg, source, rng,
                              ages=replay.ages(positions.game_ids, positions.steps))

        (batch,) = workers.next_batches([source], learner.target_version, lambda: [gather()], rng,
                                        learner.device)
    return learner.update(batch, replay)


def updates_due(env_step: int, env_steps: int, training_steps: int) -> int:
    """Updates owed after ``env_step`` agent steps: ``training_steps`` spread evenly over the run."""
    return (training_steps * min(env_step, env_steps)) // env_steps


def save_replay(replay: PrioritizedReplay, rundir: Path, step: int, keep_steps: set[int]) -> str:
    """Write ``replay-<step>/`` (atomically renamed) and delete those of checkpoints no longer kept."""
    name = f"replay-{step:010d}"
    tmp = rundir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    replay.save(tmp)
    shutil.rmtree(rundir / name, ignore_errors=True)
    tmp.rename(rundir / name)
    for old in rundir.glob("replay-*"):
        if old.name != name and int(old.name.split("-")[1]) not in keep_steps:
            shutil.rmtree(old, ignore_errors=True)
    return name


def role_seeds(seed: int, role: str, n: int = 1) -> np.ndarray:
    """Seeds for ``role`` derived from the recipe seed, drawing nothing from the run's random streams."""
    key = [seed, *role.encode()]
    return np.random.SeedSequence(key).generate_state(n, np.uint32).astype(np.int64)


def build_learner(cfg: EfficientZeroConfig, device: Any, seed: int) -> Learner:
    """A learner initialised from ``seed`` without touching torch's global stream, so methods can build
    networks at any point (before or after ``ctx.restore()``) and still resume exactly."""
    import torch

    from xfer.muzero.learner import Learner

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Learner(cfg, device=device)


def visit_temperature(train_step: int, training_steps: int, schedule: tuple[float, float, float]) -> float:
    """EZ code's ``visit_softmax_temperature_fn``: by the fraction of training done, 1 → 0.5 → 0.25."""
    progress = train_step / training_steps
    return schedule[0] if progress < 0.5 else schedule[1] if progress < 0.75 else schedule[2]


class OnlineLoop:
    """Self-play + replay + updates + evaluation + checkpoints on one task (the Atari100k protocol).

    ``update()`` performs one training update and returns scalars to log (EfficientZero's, or XTRA's
    Eq. 1 update); names without a ``/`` are logged under ``log_prefix``, others as they are.
    ``extra_state`` adds method state to checkpoints (the method restores it itself).
    Steps passed to the run context are ``step_offset + env_step``, so a method may run other stages
    before this one.
    """

    def __init__(self, ctx: RunContext, task: TaskSpec, learner: Learner, replay: PrioritizedReplay,
                 settings: SelfPlaySettings, update: Callable[[], dict[str, float]], step_offset: int = 0,
                 extra_state: Callable[[], dict[str, Any]] | None = None, task_id: int = 0,
                 eval_at_start: bool = False, log_prefix: str = "train") -> None:
        import copy

        from xfer.muzero.agent import SelfPlay, legal_mask_of

        self.ctx, self.task, self.learner, self.replay, self.settings = ctx, task, learner, replay, settings
        self.update, self.offset, self.extra_state, self.prefix = update, step_offset, extra_state, log_prefix
        self.cfg = learner.cfg
        seeds = role_seeds(ctx.recipe.seed, f"selfplay-{task.suite}-{task.task}", settings.num_envs)
        self.selfplay: SelfPlay | SelfPlayWorkers
        if settings.workers:
            from xfer.envs.make import suite_spec
            from xfer.muzero.selfplay_workers import EnvRecipe, SelfPlayWorkers

            probe = make_task_env(ctx, task, int(seeds[0]), settings.train_env_options)
            self.legal = legal_mask_of(probe, self.cfg.n_actions)
            probe.close()
            recipe = EnvRecipe(suite_spec(task.suite, ctx.registry), task.task,
                               task_settings(ctx, task, settings.train_env_options))
            self.selfplay = SelfPlayWorkers(self.cfg, recipe, seeds, self.legal, settings.workers, task_id,
                                            settings.segment_length, device=learner.device)
        else:
            envs = [make_task_env(ctx, task, int(s), settings.train_env_options) for s in seeds]
            self.legal = legal_mask_of(envs[0], self.cfg.n_actions)
            self.selfplay = SelfPlay(envs, self.cfg, self.legal, task_id, settings.segment_length)
        self.actor_net = copy.deepcopy(learner.net).eval().requires_grad_(False)
        self.env_step, self.updates, self.episodes, self.next_log, self.actor_version = 0, 0, 0, 0, 0
        self.next_eval = 0 if eval_at_start else ctx.recipe.eval.every
        self.last_stats: dict[str, float] = {}
        # perf/selfplay_s (with self-play workers: the time spent waiting for them), perf/train_s (reanalyse
        # and updates), perf/eval_s: where the run's time goes, logged with the training and evaluation rows
        self.clock = PhaseClock()

    # -- state --
    def state_dict(self, step: int) -> dict[str, Any]:
        from xfer.muzero.agent import agent_state

        keep = {int(p.stem.split("-")[1]) for p in self.ctx.checkpointer.paths()} | {step}
        replay_dir = save_replay(self.replay, self.ctx.rundir, step, keep)
        counters = [self.env_step, self.updates, self.next_eval, self.episodes, self.next_log]
        return {"agent": agent_state(self.learner.net, self.cfg, self.legal),
                "learner": self.learner.state_dict(), "actor_net": self.actor_net.state_dict(),
                "selfplay": self.selfplay.state_dict(), "replay_dir": replay_dir,
                "counters": np.array(counters, np.int64), "phase_seconds": self.clock.state_dict(),
                **(self.extra_state() if self.extra_state else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from xfer.muzero.replay import PrioritizedReplay

        self.learner.load_state_dict(state["learner"])
        self.actor_net.load_state_dict(state["actor_net"])
        loaded = PrioritizedReplay.load(self.ctx.rundir / state["replay_dir"], self.cfg)
        self.replay.__dict__.update(loaded.__dict__)
        self.env_step, self.updates, self.next_eval, self.episodes, self.next_log = (
            int(x) for x in state["counters"])
        self.clock.load_state_dict(state.get("phase_seconds", {}))  # absent in older checkpoints
        if self.env_step < self.settings.env_steps:
            from xfer.errors import XferError

            if ("workers" in state["selfplay"]) != bool(self.settings.workers):
                raise XferError("the checkpoint was written with selfplay.workers "
                                f"{'> 0' if self.settings.workers == 0 else '0'}, the recipe now has "
                                f"{self.settings.workers}",
                                hint="resume with the recipe's former selfplay.workers")
            self.selfplay.restore(state["selfplay"])

    def save(self) -> None:
        step = self.offset + self.env_step
        self.ctx.save(step, self.state_dict(step))

    def close(self) -> None:
        self.selfplay.close()

    # -- the loop --
    def agent(self, net: Any) -> MuZeroAgent:
        from xfer.muzero.agent import MuZeroAgent

        return MuZeroAgent(net, self.cfg, self.legal, device=self.learner.device)

    def run(self, resume: dict[str, Any] | None = None) -> bool:
        """Run to ``env_steps``; False when stopped early (a checkpoint was written)."""
        ctx, s = self.ctx, self.settings
        if resume is not None:
            self.load_state_dict(resume)
            if self.env_step >= s.env_steps:
                return True  # finished before: its last checkpoint is the final one
        else:
            self.selfplay.start(ctx.rng)
        ctx.progress.update(phase=f"online {self.task.task}", total=s.env_steps)
        if not (self._play_in_workers() if s.workers else self._play()):
            return False
        self.run_eval()
        if ctx.recipe.eval.video:
            self.write_video()
        self.save()
        return True

    def _play(self) -> bool:
        """Self-play in this process: one agent step in every environment, then the updates it owes."""
        ctx, s, cfg = self.ctx, self.settings, self.cfg
        actor = self.agent(self.actor_net)
        while self.env_step < s.env_steps:
            if self.next_eval <= self.env_step:
                self.run_eval()
            temperature = visit_temperature(self.learner.train_step, cfg.training_steps, s.temperatures)
            with self.clock.phase("selfplay"):
                played = self.selfplay.step(actor, temperature, ctx.rng)
            self._add(*played)
            self.train()
            self._report()
            if self.env_step < s.env_steps and self._checkpoint_or_stop():
                return False
        return True

    def _play_in_workers(self) -> bool:
        """Self-play in worker processes: the next chunk plays while this process trains the updates the
        last one owes (and evaluates); checkpoints fall between chunks, when nothing is in flight."""
        from xfer.muzero.selfplay_workers import SelfPlayWorkers

        ctx, s, cfg = self.ctx, self.settings, self.cfg
        workers = self.selfplay
        assert isinstance(workers, SelfPlayWorkers)
        while True:
            if not workers.in_flight and self.env_step < s.env_steps:
                temperature = visit_temperature(self.learner.train_step, cfg.training_steps, s.temperatures)
                workers.submit(self.actor_net, self.actor_version, self._chunk_steps(), temperature, ctx.rng)
            self.train()
            self._report()
            if self.env_step >= s.env_steps:
                return True
            if self.next_eval <= self.env_step:
                self.run_eval()
            with self.clock.phase("selfplay"):  # here: waiting for the workers' chunk
                received = list(workers.receive())
            for games, returns in received:
                self._add(games, returns)
            if self.env_step < s.env_steps and self._checkpoint_or_stop():
                return False

    def _chunk_steps(self) -> int:
        """Agent steps for the next chunk: ``worker_steps``, ending at the next evaluation or the run's end
        (at the first step on or past it, where the in-process loop would stop there too)."""
        s, every = self.settings, self.ctx.recipe.eval.every
        next_eval = self.next_eval if self.next_eval > self.env_step else self.env_step + every
        room = min(next_eval, s.env_steps) - self.env_step
        return max(1, min(s.worker_steps, -(-room // s.num_envs)))

    def _add(self, games: list[Any], returns: list[float]) -> None:
        """One agent step's replay entries and the returns of the games it ended."""
        for game in games:
            self.replay.add(game)
        self.env_step += self.settings.num_envs
        self.episodes += len(returns)
        for ret in returns:
            self.ctx.logger.log(self.offset + self.env_step, {f"{self.prefix}/return": ret},
                                env_steps=self.env_step)

    def _report(self) -> None:
        ctx = self.ctx
        if self.env_step >= self.next_log and self.last_stats:
            stats = {k if "/" in k else f"{self.prefix}/{k}": v for k, v in self.last_stats.items()}
            ctx.logger.log(self.offset + self.env_step, {**stats, **self.clock.metrics()},
                           env_steps=self.env_step, updates=self.updates)
            self.next_log = self.env_step + ctx.recipe.logging.every
        ctx.progress.update(step=self.env_step, env_steps=self.env_step, updates=self.updates)

    def _checkpoint_or_stop(self) -> bool:
        """Checkpoint when due or asked to stop; True to stop (several processes stop together). Not called
        at the last agent step: the run's end (final evaluation, then a checkpoint) follows it, and a
        checkpoint there would make a resumed run skip that evaluation."""
        from xfer.run.distributed import any_rank

        step = self.offset + self.env_step
        stop = any_rank(self.ctx.should_stop(step))
        if self.ctx.checkpoint_due(step) or stop:
            self.save()
        return stop

    def write_video(self) -> None:
        """One greedy evaluation episode as ``eval.mp4`` in the run directory (the newest frame of each
        observation, gray shown as RGB)."""
        from xfer.run.evaluate import run_episodes, write_video

        seed = int(self.ctx.rng.integers(2**31))
        env = make_task_env(self.ctx, self.task, seed, self.settings.eval_env_options)
        try:
            _, episodes = run_episodes(self.agent(self.learner.net), env, 1, seed, record=True)
        finally:
            env.close()
        frames = episodes[0]["image"][..., -self.cfg.image_channels:]
        if frames.shape[-1] == 1:
            frames = np.repeat(frames, 3, axis=-1)
        write_video(self.ctx.rundir / "eval.mp4", frames)

    def train(self) -> None:
        """Catch up with the updates owed; refresh the acting network every ``actor_update_interval``."""
        from xfer.run.distributed import any_rank

        s, cfg = self.settings, self.cfg
        if any_rank(self.replay.num_transitions < cfg.min_replay_size):  # several processes agree
            return
        while self.updates < updates_due(self.env_step, s.env_steps, cfg.training_steps):
            with self.clock.phase("train"):
                self.last_stats = self.update()
            self.updates += 1
            if self.updates % s.actor_update_interval == 0:
                self.actor_net.load_state_dict(self.learner.net.state_dict())
                self.actor_version += 1

    def run_eval(self) -> dict[str, float]:
        ctx = self.ctx
        episodes = ctx.recipe.eval.episodes
        seeds = ctx.rng.integers(2**31, size=episodes)
        with self.clock.phase("eval"):
            envs = [make_task_env(ctx, self.task, int(seeds[i]), self.settings.eval_env_options)
                    for i in range(min(self.settings.eval_envs, episodes))]
            try:
                result = evaluate(self.agent(self.learner.net), envs, seeds)
            finally:
                for env in envs:
                    env.close()
        ctx.logger.log(self.offset + self.env_step, {**result, **self.clock.metrics()},
                       env_steps=self.env_step)
        ctx.progress.update(**{"return": result["eval/return"]})
        self.next_eval = self.env_step + ctx.recipe.eval.every
        return result
