"""The ``xtra`` run: Stage 1 (offline multi-task pretraining) then Stage 2 (cross-task finetuning), resumable.

- ``pretrain: true`` and no ``pretrained``: Stage 1 on the recipe's ``sources`` (one teacher per game, then
  the distilled student), then Stage 2 on the ``target`` from the student.
- ``pretrained: RUNDIR|CHECKPOINT``: Stage 2 from the student of another xtra run (one student can serve
  several targets: run it with ``pretrain_only: true`` first).
- ``pretrain: false``: Stage 2 from a random initialisation ("w.o. pretraining").
Steps: Stage 1 counts updates (``m * teacher_steps + distill_steps``), Stage 2 continues with agent steps.
The student's zero-shot score on the target is ``eval/return`` at Stage 2's agent step 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xfer_plugins.xtra.config import XtraConfig
from xfer_plugins.xtra.finetune import (
    CrossTaskUpdate,
    check_offline_targets,
    freeze_representation,
    reset_priorities,
)
from xfer_plugins.xtra.offline import has_search, offline_replay
from xfer_plugins.xtra.pretrain import OfflineGame, Pretraining

from xfer.data.dataset import DatasetFit, open_task_dataset
from xfer.errors import XferError
from xfer.muzero.agent import MuZeroAgent, agent_from_checkpoint
from xfer.muzero.batch_workers import BatchWorkers
from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.loop import OnlineLoop, build_learner, probe_task, role_seeds
from xfer.muzero.replay import PrioritizedReplay
from xfer.recipe import Recipe, TaskSpec
from xfer.run.context import RunContext


def load_games(ctx: RunContext, cfg: EfficientZeroConfig, sources: list[TaskSpec]) -> list[OfflineGame]:
    """Every source game's dataset (collected first when the recipe gives a ``collect`` spec)."""
    games = []
    for i, task in enumerate(sources):
        if task.dataset is None:
            raise XferError(f"xtra: source {task.suite}/{task.task} has no dataset",
                            hint="give it `dataset: {path: ...}` or `dataset: {collect: {policy: ...}}`")
        dataset = open_task_dataset(ctx.dataset(task), task, DatasetFit(
            image_size=cfg.image_size, action_size=cfg.n_actions, discrete=True))
        _, legal = probe_task(ctx, task, cfg, {})
        ctx.say(f"offline game {task.task}: {len(dataset)} episodes, {dataset.steps} steps")
        episodes = list(dataset)
        games.append(OfflineGame(task.task, offline_replay(episodes, cfg, legal, i + 1), legal,
                                 searched=all(has_search(e) for e in episodes)))
    return games


def read_pretrained(path: Path) -> dict[str, Any]:
    """The student of another xtra run (its run directory's newest checkpoint, or a checkpoint file)."""
    from xfer.run.checkpoint import load_run_checkpoint

    found = load_run_checkpoint(path)
    if "student" not in found["method"]:
        raise XferError(f"xtra: {str(path)!r} holds no pretrained student",
                        hint="pass an xtra run whose Stage 1 finished (e.g. one with pretrain_only: true)")
    return found["method"]["student"]


def run(recipe: Recipe, ctx: RunContext) -> None:
    cfg: XtraConfig = recipe.config
    if recipe.target is None:
        raise XferError("xtra needs a target task", hint="add `target: {suite: atari, task: ...}`")
    stage1 = cfg.pretrain and cfg.pretrained is None
    if (stage1 or cfg.finetune.cross_task) and not recipe.sources:
        raise XferError("xtra needs offline source games for pretraining or cross-task finetuning",
                        hint="list them under `sources:` with datasets, or set pretrain/cross_task false")
    # one network for every game: fitted to the target's observations (Atari RGB or gray), full action head
    model, target_legal = probe_task(ctx, recipe.target, cfg.model, {})
    games = load_games(ctx, model, recipe.sources) if stage1 or cfg.finetune.cross_task else []
    if not cfg.pretrain_only:
        check_offline_targets(games, cfg.finetune)  # before Stage 1, not after it
    saved = ctx.restore()  # everything built so far draws nothing from the run's random streams
    stage = "pretrain" if saved is None else saved["stage"]
    offset, student = 0, None
    if stage1:
        pre = Pretraining(ctx, model, cfg.stage1, games, target_legal)
        offset = pre.total_steps
        if stage == "pretrain":
            net = pre.run(saved)
            if net is None:
                return
            saved = pre.final_state(net)
            ctx.save(offset, saved)
            stage = "pretrained"
            if ctx.should_stop(offset):
                return
        student = saved["student"] if stage == "pretrained" else None
        del pre  # the teachers are no longer needed
    elif cfg.pretrain and cfg.pretrained is not None:
        student = read_pretrained(cfg.pretrained)
    if cfg.pretrain_only:
        return
    zero_shot = cfg.zero_shot_eval and cfg.pretrain
    finetune(recipe, ctx, model, games, student, offset, saved if stage == "finetune" else None, zero_shot)


def finetune(recipe: Recipe, ctx: RunContext, model: EfficientZeroConfig, games: list[OfflineGame],
             student: dict[str, Any] | None, offset: int, saved: dict[str, Any] | None,
             zero_shot: bool) -> None:
    """Stage 2 from ``student`` (None: random initialisation), or resumed from a Stage 2 checkpoint;
    ``model`` is the recipe's network fitted to the target."""
    cfg: XtraConfig = recipe.config
    assert recipe.target is not None
    learner = build_learner(model, ctx.device, int(role_seeds(recipe.seed, "finetune")[0]))
    if student is not None and saved is None:
        learner.net.load_state_dict(student["net"])
        learner.update_target()
    if cfg.finetune.freeze_representation:
        freeze_representation(learner)
    for game in games:
        reset_priorities(game.replay)
    n_workers = cfg.finetune.reanalyse_workers
    workers = BatchWorkers(model, n_workers, ctx.device) if n_workers else None
    update = CrossTaskUpdate(ctx, learner, PrioritizedReplay(model), games, cfg.finetune, workers)
    loop = OnlineLoop(ctx, recipe.target, learner, update.target, cfg.selfplay, update, step_offset=offset,
                      extra_state=update.state_dict, eval_at_start=zero_shot)
    if saved is not None:
        update.load_state_dict(saved)
    try:
        loop.run(saved)
    finally:
        loop.close()
        if workers is not None:
            workers.close()


def load_agent(rundir: Path, checkpoint: Path | None, device: str) -> MuZeroAgent:
    """The finetuned agent, or the pretrained student (zero-shot) when only Stage 1 has finished."""
    return agent_from_checkpoint(rundir, checkpoint, device)
