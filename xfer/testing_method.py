"""The ``fake-linear`` method: a deterministic online loop that follows the resume contract exactly.

Its loop is the template for real methods: restore, act with seeded environments, learn from a replay,
log, checkpoint at episode boundaries, stop on request. A resumed run ends with the same parameters and
metrics as an uninterrupted one (tests/core/test_resume.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from xfer.recipe import Recipe
from xfer.run.context import RunContext


class LinearAgent:
    def __init__(self) -> None:
        self.policy = torch.nn.Linear(4, 2)

    def act(self, obs: dict[str, np.ndarray], state: Any, explore: bool) -> tuple[np.ndarray, Any]:
        with torch.no_grad():
            action = torch.tanh(self.policy(torch.as_tensor(obs["state"], dtype=torch.float32)))
        return action.numpy(), state


def run(recipe: Recipe, ctx: RunContext) -> None:
    cfg = recipe.config
    assert recipe.target is not None, "fake-linear needs a target task"
    agent = LinearAgent()
    optim = torch.optim.Adam(agent.policy.parameters(), lr=cfg.lr)
    states: list[np.ndarray] = []
    step = 0
    env = ctx.make_env(recipe.target, seed=recipe.seed)  # reset below with seeds from ctx.rng
    saved = ctx.restore()
    if saved is not None:
        agent.policy.load_state_dict(saved["policy"])
        optim.load_state_dict(saved["optim"])
        states = list(saved["states"])
        step = saved["step"]

    def snapshot() -> dict[str, Any]:
        return {"policy": agent.policy.state_dict(), "optim": optim.state_dict(),
                "states": np.array(states, np.float32).reshape(-1, 4), "step": step}

    ctx.progress.update(phase="train", total=cfg.steps)
    while step < cfg.steps:
        obs, _ = env.reset(seed=int(ctx.rng.integers(2**31)))
        done, episode_return = False, 0.0
        while not done and step < cfg.steps:
            action, _ = agent.act({"state": obs["state"][None]}, None, explore=True)
            action = np.clip(action[0] + cfg.noise * torch.randn(2).numpy(), -1, 1)
            obs, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
            episode_return += reward
            states.append(obs["state"])
            step += 1
            if cfg.fail_at is not None and step >= cfg.fail_at:
                raise RuntimeError(f"fake-linear failed on purpose at step {step}")
            idx = ctx.rng.integers(len(states), size=cfg.batch)
            batch = torch.as_tensor(np.array(states)[idx])
            loss = ((torch.tanh(agent.policy(batch)) - (batch[:, 2:] - batch[:, :2])) ** 2).mean()
            optim.zero_grad()
            loss.backward()
            optim.step()
            if step % recipe.logging.every == 0:
                ctx.logger.log(step, {"train/loss": loss.item()}, env_steps=step)
            ctx.progress.update(step=step, env_steps=step, updates=step)
        ctx.logger.log(step, {"train/return": episode_return}, env_steps=step)
        ctx.progress.update(**{"return": episode_return})
        if ctx.checkpoint_due(step) or ctx.should_stop(step) or step >= cfg.steps:
            ctx.save(step, snapshot())
        if ctx.should_stop(step):
            return


def load_agent(rundir: Path, checkpoint: Path | None, device: str) -> LinearAgent:
    from xfer.run.checkpoint import load_run_checkpoint

    agent = LinearAgent()
    agent.policy.load_state_dict(load_run_checkpoint(rundir, checkpoint)["method"]["policy"])
    return agent
