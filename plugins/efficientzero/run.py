"""The ``efficientzero`` run: online EfficientZero on the recipe's target game (Atari100k protocol).

Self-play with batched MCTS over ``selfplay.num_envs`` environments, prioritised replay, reanalysed
targets from the target network, and the EfficientZero loss (XTRA App. A, Eq. 3) through the shared
loop of :mod:`xfer.muzero.loop`. Evaluation reports ``eval/return`` without reward clipping or episodic
life. Resumes exactly from any checkpoint (see :mod:`xfer.muzero.loop`).
"""

from __future__ import annotations

from pathlib import Path

from xfer.errors import XferError
from xfer.muzero.agent import MuZeroAgent, agent_from_checkpoint
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
    loop = OnlineLoop(ctx, recipe.target, learner, replay, cfg.selfplay,
                      update=lambda: efficientzero_update(learner, replay, ctx.rng),
                      eval_at_start=cfg.eval_at_start)
    try:
        loop.run(ctx.restore())
    finally:
        loop.close()


def load_agent(rundir: Path, checkpoint: Path | None, device: str) -> MuZeroAgent:
    return agent_from_checkpoint(rundir, checkpoint, device)
