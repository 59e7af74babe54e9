"""The ``efficientzero`` run: online EfficientZero on the recipe's target game (Atari100k protocol).

Self-play with batched MCTS over ``selfplay.num_envs`` environments, prioritised replay, reanalysed
targets from the target network, and the EfficientZero loss (XTRA App. A, Eq. 3) through the shared
loop of :mod:`xfer.muzero.loop`. Evaluation reports ``eval/return`` without reward clipping or episodic
life. Resumes exactly from any checkpoint (see :mod:`xfer.muzero.loop`). ``reanalyse_workers: N`` moves the
target network's part of each batch into N processes working ahead of the learner
(:mod:`xfer.muzero.batch_workers`).
"""

from __future__ import annotations

from pathlib import Path

from xfer.errors import XferError
from xfer.muzero.agent import MuZeroAgent, agent_from_checkpoint
from xfer.muzero.batch_workers import BatchWorkers
from xfer.muzero.loop import OnlineLoop, build_learner, efficientzero_update, probe_task, role_seeds
from xfer.muzero.replay import PrioritizedReplay
from xfer.recipe import Recipe
from xfer.run.context import RunContext


def run(recipe: Recipe, ctx: RunContext) -> None:
    cfg = recipe.config
    if recipe.target is None:
        raise XferError("efficientzero needs a target task", hint="add `target: {suite: atari, task: ...}`")
    model, _ = probe_task(ctx, recipe.target, cfg.model, cfg.selfplay.train_env_options)
    learner = build_learner(model, ctx.device, int(role_seeds(recipe.seed, "learner")[0]))
    replay = PrioritizedReplay(model)
    workers = BatchWorkers(model, cfg.reanalyse_workers, ctx.device) if cfg.reanalyse_workers else None
    loop = OnlineLoop(ctx, recipe.target, learner, replay, cfg.selfplay,
                      update=lambda: efficientzero_update(learner, replay, ctx.rng, workers=workers),
                      extra_state=(lambda: {"batch_workers": workers.state_dict()}) if workers else None,
                      eval_at_start=cfg.eval_at_start)
    try:
        resume = ctx.restore()
        if workers is not None and resume is not None and "batch_workers" in resume:
            workers.load_state_dict(resume["batch_workers"])
        loop.run(resume)
    finally:
        loop.close()
        if workers is not None:
            workers.close()


def load_agent(rundir: Path, checkpoint: Path | None, device: str) -> MuZeroAgent:
    return agent_from_checkpoint(rundir, checkpoint, device)
