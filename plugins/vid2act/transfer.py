"""Stage 2 of Vid2Act: online transfer to the target task (paper Sections 4.3–4.4, Algorithm 1) on the shared
online loop :func:`xfer.dreamer.loop.train_online` — acting, the replay buffer, the update schedule,
evaluation, checkpoints and the final video are the loop's; Vid2Act brings the learner
(:class:`~xfer_plugins.vid2act.agent.Vid2ActAgent`) and an evaluator that also reports which source label the
actor used while being evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xfer_plugins.vid2act.agent import Vid2ActAgent, student_model_config
from xfer_plugins.vid2act.config import Vid2ActConfig
from xfer_plugins.vid2act.stages import TRANSFER, StageContext
from xfer_plugins.vid2act.teacher import MixtureTeacher

from xfer.data.replay import ReplayBuffer
from xfer.dreamer.loop import EnvBatch, EnvEvaluator, EvalAgent, train_online
from xfer.errors import XferError
from xfer.recipe import TaskSpec
from xfer.run.context import RunContext


class LabelEvaluator(EnvEvaluator):
    """The loop's evaluator, plus ``eval/label/<task>``: the share of evaluation steps on which the actor used
    each source label. Acting counts of training are set aside meanwhile."""

    def __init__(self, ctx: Any, agent: Vid2ActAgent, env: Any, episodes: int) -> None:
        super().__init__(ctx, EvalAgent(agent), env, episodes)
        self.student = agent

    def __call__(self, step: int = 0) -> dict[str, float]:
        kept = self.student.acting_counts.clone()
        self.student.acting_counts.zero_()
        try:
            metrics = super().__call__(step)
            metrics.update(self.student.label_fractions(self.student.acting_counts, "eval/label"))
        finally:
            self.student.acting_counts = kept
        return metrics

    def video(self, path: Path, step: int) -> Path:
        kept = self.student.acting_counts.clone()
        try:
            return super().video(path, step)
        finally:
            self.student.acting_counts = kept


def select_labels(teacher: MixtureTeacher, subset: Sequence[str] | None) -> list[int]:
    """The teacher labels Stage 2 distils from: all, or those named by ``transfer.sources_subset``."""
    if subset is None:
        return list(range(teacher.num_labels))
    unknown = [name for name in subset if name not in teacher.tasks]
    if unknown:
        raise XferError(f"transfer.sources_subset names {unknown}, which the teacher was not trained on",
                        hint=f"the teacher's source tasks: {teacher.tasks}")
    return [teacher.tasks.index(name) for name in subset]


def build_student(cfg: Vid2ActConfig, teacher: MixtureTeacher, obs_shapes: Mapping[str, tuple[int, ...]],
                  act_dim: int, discrete: bool, labels: Sequence[int], device: Any) -> Vid2ActAgent:
    model = student_model_config(cfg.model, cfg.transfer.beta)
    return Vid2ActAgent(obs_shapes, act_dim, discrete, model, teacher, cfg.transfer, labels, device,
                        vae_lr=cfg.pretrain.vae_lr)


def run_transfer(ctx: RunContext, cfg: Vid2ActConfig, target: TaskSpec, envs: EnvBatch, eval_env: Any,
                 teacher: MixtureTeacher, teacher_path: Path, offset: int, source_batches: Any = None
                 ) -> None:
    """Stage 2 in ``ctx`` (the run's steps ``offset`` + environment steps)."""
    image = tuple(envs.env.observation_space["image"].shape) if not envs.vector else tuple(
        envs.env.single_observation_space["image"].shape)
    obs_shapes = {"image": image}
    labels = select_labels(teacher, cfg.transfer.sources_subset)
    agent = build_student(cfg, teacher, obs_shapes, envs.act_dim, envs.discrete, labels, ctx.device)
    agent.source_batches = source_batches
    schedule = cfg.transfer.schedule.model_copy(update={"env_steps": cfg.transfer.env_steps})
    episodes = schedule.eval_episodes or ctx.recipe.eval.episodes
    evaluator = LabelEvaluator(ctx, agent, eval_env, episodes)
    meta = {"teacher": str(teacher_path.resolve()), "labels": labels, "obs_shapes": obs_shapes,
            "act_dim": envs.act_dim, "discrete": envs.discrete, "config": cfg.model_dump(mode="json")}
    ctx.say(f"Vid2Act Stage 2: {target.suite}/{target.task}, {cfg.transfer.env_steps} environment steps, "
            f"distilling from {', '.join(agent.tasks)}")
    replay = ReplayBuffer(ctx.rundir / "replay", capacity_steps=schedule.replay_capacity,
                          sampling=schedule.sampling)
    stage = StageContext(ctx, TRANSFER, offset)
    train_online(stage, agent, envs, replay, schedule, evaluator, meta=meta,  # type: ignore[arg-type]
                 phase="vid2act stage 2")
