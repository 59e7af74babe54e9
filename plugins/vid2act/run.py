"""``vid2act``'s entry points: :func:`run` (Stage 1 then Stage 2 in one run directory, resumable in both) and
:func:`load_agent` (the Stage 2 student for ``xfer eval`` and ``checkpoint:RUNDIR`` data collection).

A run with ``transfer.teacher`` unset pretrains the teacher on the recipe's ``sources`` (Stage 1, run's steps
0 … ``pretrain.steps``), writes ``<rundir>/teacher.pt``, then transfers to ``target`` (Stage 2, run's step =
``pretrain.steps`` + environment steps). With ``transfer.teacher: PATH`` (a ``teacher.pt`` or a run directory
holding one) Stage 1 is skipped and the run's step is the environment step. Each checkpoint records its stage,
so ``xfer resume`` continues inside whichever stage was interrupted (see :mod:`xfer_plugins.vid2act.stages`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xfer_plugins.vid2act.config import Vid2ActConfig
from xfer_plugins.vid2act.pretrain import mixture_batches, open_sources, run_pretrain, source_names
from xfer_plugins.vid2act.stages import TRANSFER, checkpoint_stage
from xfer_plugins.vid2act.teacher import TEACHER_FILE, MixtureTeacher
from xfer_plugins.vid2act.transfer import build_student, run_transfer

from xfer.dreamer.loop import EnvBatch, EvalAgent
from xfer.errors import XferError
from xfer.recipe import Recipe, TaskSpec
from xfer.run.context import RunContext

EVAL_SEED_OFFSET = 10_000


def active_sources(sources: Sequence[TaskSpec], subset: Sequence[str] | None) -> list[TaskSpec]:
    """The recipe's sources, or those named by ``transfer.sources_subset`` (Fig. 7's ablation)."""
    if not sources:
        raise XferError("Vid2Act needs source tasks: give the recipe a `sources:` list with datasets")
    if subset is None:
        return list(sources)
    names = source_names(sources)
    unknown = [name for name in subset if name not in names]
    if unknown:
        raise XferError(f"vid2act.transfer.sources_subset names {unknown}, which are not among the sources",
                        hint=f"the sources: {names}")
    return [spec for spec, name in zip(sources, names, strict=True) if name in subset]


def teacher_file(cfg: Vid2ActConfig, rundir: Path) -> Path:
    if cfg.transfer.teacher is None:
        return rundir / TEACHER_FILE
    path = Path(cfg.transfer.teacher)
    return path / TEACHER_FILE if path.is_dir() else path


def target_envs(recipe: Recipe, ctx: RunContext) -> tuple[EnvBatch, Any]:
    """The training environment(s) (seeded from the recipe's seed; episodes are reset with seeds from
    ``ctx.rng`` by the loop) and the evaluation environment."""
    target = recipe.target
    if target is None:
        raise XferError("Vid2Act needs a `target:` task")
    settings = recipe.env_for(target).resolve(ctx.registry.suite(target.suite).defaults)
    envs = EnvBatch(ctx.make_env(target, seed=recipe.seed), action_repeat=settings.action_repeat or 1)
    space = envs.env.single_observation_space if envs.vector else envs.env.observation_space
    if "image" not in space.spaces:
        raise XferError(f"{target.suite}/{target.task} gives no image observation; Vid2Act is visual")
    return envs, ctx.make_env(target, seed=recipe.seed + EVAL_SEED_OFFSET)


def vae_source_batches(ctx: RunContext, cfg: Vid2ActConfig, sources: Sequence[TaskSpec],
                       teacher: MixtureTeacher) -> Any:
    """Source batches labelled in the teacher's order, for ``train_vae_in_transfer`` (authors' code)."""
    by_name = dict(zip(source_names(sources), sources, strict=True))
    missing = [task for task in teacher.tasks if task not in by_name]
    if missing:
        raise XferError(f"train_vae_in_transfer needs the teacher's source datasets; missing in `sources`: "
                        f"{missing}")
    opened = open_sources(ctx, [by_name[task] for task in teacher.tasks])
    schedule = cfg.transfer.schedule
    sample = mixture_batches(opened, teacher.act_dim, schedule.batch, schedule.seq_len)
    return lambda: sample(ctx.rng)


def run(recipe: Recipe, ctx: RunContext) -> None:
    cfg: Vid2ActConfig = recipe.config
    envs, eval_env = target_envs(recipe, ctx)
    assert recipe.target is not None
    path = teacher_file(cfg, ctx.rundir)
    with_stage1 = cfg.transfer.teacher is None
    try:
        if with_stage1 and checkpoint_stage(ctx) != TRANSFER:
            sources = active_sources(recipe.sources, cfg.transfer.sources_subset)
            if not run_pretrain(ctx, cfg, sources, envs.act_dim, path):
                return
        teacher = MixtureTeacher.load(path, ctx.device)
        batches = (vae_source_batches(ctx, cfg, recipe.sources, teacher) if cfg.transfer.train_vae_in_transfer
                   else None)
        offset = cfg.pretrain.steps if with_stage1 else 0
        run_transfer(ctx, cfg, recipe.target, envs, eval_env, teacher, path, offset, batches)
    finally:
        envs.env.close()
        eval_env.close()


def load_agent(rundir: Path, checkpoint: Path | None, device: str) -> EvalAgent:
    """The Stage 2 student of a run (newest checkpoint, or ``checkpoint``), with its frozen teacher."""
    from xfer.run.checkpoint import load_run_checkpoint

    method = load_run_checkpoint(Path(rundir), checkpoint)["method"]
    if method.get("stage") != TRANSFER:
        raise XferError(f"run {str(rundir)!r} has no Stage 2 checkpoint yet (it is still pretraining)",
                        hint="Vid2Act's agent exists once Stage 2 (transfer) has checkpointed")
    inner = method["state"]
    meta = inner["meta"]
    cfg = Vid2ActConfig.model_validate(meta["config"])
    path = Path(meta["teacher"])
    if not path.is_file():
        path = Path(rundir) / TEACHER_FILE
    teacher = MixtureTeacher.load(path, device)
    obs_shapes = {key: tuple(shape) for key, shape in meta["obs_shapes"].items()}
    agent = build_student(cfg, teacher, obs_shapes, int(meta["act_dim"]), bool(meta["discrete"]),
                          [int(k) for k in meta["labels"]], device)
    agent.load_state_dict(inner["learner"])
    return EvalAgent(agent)
