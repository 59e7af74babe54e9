"""What a Dreamer world model believes fixed action plans earn: the imagined reward per step of the actor's
own rollout and of plans that ignore the state (each constant action, uniform random actions), from the
posterior states of replay batches.

A DreamerV2 actor learns only through its world model (gradients of imagined returns through the dynamics,
Eq. 6 with ρ = 0 on continuous control). When the actor has saturated at a constant action and the model
predicts about the same reward for every plan, the actor has nothing to follow, whatever its learning rate:
an exploration failure, not an optimisation one. Comparing the numbers with the environment's own rewards
for the same plans (``benchmarks/policy_baselines.py``) separates "the model does not know" from "the model
is wrong".

    python -m xfer.dreamer.plan_rewards RUN_OR_CHECKPOINT [--batches 3] [--seed 0] [--json]

works for any run whose agent is a Dreamer agent and whose run directory keeps its online replay
(``dreamer``, ``vid2act``). Continuous actions: plans ``low`` (every entry −1), ``high`` (+1), ``zero`` and
``random`` (uniform on [−1, 1]); discrete actions: one constant plan per action and ``random``. Every plan
runs for the agent's imagination horizon, as the actor's own rollout does. The reward is the reward head's
mean (what the model believes), not a method's training reward (Offline DV2's ensemble penalty, CoWorld's
relabelling).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

Plan = Callable[[int, int, torch.Generator], Tensor]  # (step, rows, generator) -> actions [rows, A]


def fixed_plans(act_dim: int, discrete: bool) -> dict[str, Plan]:
    """The state-independent plans of the module docstring, as functions of (step, rows, generator)."""
    if discrete:
        eye = torch.eye(act_dim)
        plans: dict[str, Plan] = {f"action_{i}": (lambda _t, n, _g, i=i: eye[i].expand(n, -1).clone())
                                  for i in range(act_dim)}
        plans["random"] = lambda _t, n, g: eye[torch.randint(0, act_dim, (n,), generator=g)]
        return plans
    return {
        "low": lambda _t, n, _g: -torch.ones(n, act_dim),
        "high": lambda _t, n, _g: torch.ones(n, act_dim),
        "zero": lambda _t, n, _g: torch.zeros(n, act_dim),
        "random": lambda _t, n, g: torch.rand(n, act_dim, generator=g) * 2 - 1,
    }


@torch.no_grad()
def plan_rewards(agent: Any, batch: Mapping[str, Any], seed: int = 0,
                 plans: Mapping[str, Plan] | None = None) -> dict[str, float]:
    """Mean imagined reward per step over the agent's horizon from every posterior state of ``batch`` ([B, L]
    of the agent's replay): ``actor`` (the agent's own imagination, sampled actions), ``actor_action_mean``
    (continuous only: the mean of those sampled actions over steps, states and action entries — an actor
    saturated at +1 on one entry and −1 on another shows 0), and one entry per plan (default
    :func:`fixed_plans`). Methods that register world-model terms (Vid2Act's distillation, which selects the
    label its actor reads) have them run first, as an update would. ``seed`` seeds torch (the latent and
    action samples) and the random plan."""
    torch.manual_seed(seed)
    horizon = agent.cfg.horizon
    wm = agent.world_model
    data = agent.to_tensors(batch)
    out = wm.observe(data)
    for term in agent.world_model_terms:
        term(out, data)
    imag = agent.imagine(out)
    result = {"actor": float(wm.reward(imag.feat[1:], imag.cond).mean())}
    if not agent.discrete:
        result["actor_action_mean"] = float(imag.action[1:].mean())
    start = out.post.map(lambda x: x.flatten(0, 1))
    cond = None if out.cond is None else out.cond.flatten(0, 1)
    rows = start.deter.shape[0]
    generator = torch.Generator().manual_seed(seed)
    device = start.deter.device
    for name, plan in (plans or fixed_plans(agent.act_dim, agent.discrete)).items():
        state, rewards = start, []
        for step in range(horizon):
            state = wm.rssm.img_step(state, plan(step, rows, generator).to(device), cond)
            rewards.append(wm.reward(wm.rssm.feat(state), cond).mean())
        result[name] = float(torch.stack(rewards).mean())
    return result


def run_plan_rewards(target: Path, batches: int = 3, seed: int = 0) -> dict[str, float]:
    """:func:`plan_rewards` averaged over ``batches`` replay batches of a run (its newest checkpoint, or the
    checkpoint file ``target``), at the run's batch shape."""
    from rich.console import Console

    from xfer.data.replay import ReplayBuffer
    from xfer.dreamer.loop import replay_batches
    from xfer.errors import XferError
    from xfer.run.evaluate import load_run_agent

    run = load_run_agent(target, "cpu", Console(stderr=True))
    agent = getattr(run.agent, "agent", None)
    if agent is None or not hasattr(agent, "world_model"):
        raise XferError(f"{str(target)!r} is a {run.recipe.method} run: plan rewards need a Dreamer agent")
    rundir = target if target.is_dir() else target.parent.parent
    if not (rundir / "replay").is_dir():
        raise XferError(f"{str(rundir)!r} keeps no online replay (replay/) to start imagination from",
                        hint="use a dreamer or vid2act run directory")
    inputs = getattr(run.recipe.config, "inputs", ("image",))  # the observation keys the world model reads
    sample = replay_batches(ReplayBuffer(rundir / "replay", readonly=True), *batch_shape(run.recipe), inputs)
    rng = np.random.default_rng(seed)
    totals: dict[str, float] = {}
    for index in range(batches):
        for name, value in plan_rewards(agent, sample(rng), seed + index).items():
            totals[name] = totals.get(name, 0.0) + value / batches
    return {"checkpoint_step": float(run.step), **totals}


def batch_shape(recipe: Any) -> tuple[int, int]:
    """The (batch, sequence length) a run's online updates used: ``dreamer.train`` or Vid2Act's Stage 2
    schedule; (16, 32) where neither is found."""
    config = recipe.config
    transfer = getattr(config, "transfer", None)
    for schedule in (getattr(config, "train", None), getattr(transfer, "schedule", None)):
        if schedule is not None and hasattr(schedule, "batch"):
            return int(schedule.batch), int(schedule.seq_len)
    return 16, 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Path, help="run directory or a checkpoint file inside one")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from xfer.run.report import print_report

    print_report(lambda: run_plan_rewards(args.target, args.batches, args.seed), args.json)


if __name__ == "__main__":
    main()
