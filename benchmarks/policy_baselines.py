"""Returns of policies that learn nothing, on a recipe's target task with the recipe's environment settings.

The floor a learning claim has to clear: a uniformly random policy and every constant action (discrete
spaces; for box spaces the zero action and ±1 on the first entry), ``--episodes`` episodes each, with the
evaluation options of the method when given (``--option train=false`` for Atari: the game's own reward over
whole games, as ``efficientzero`` evaluates). Episodes end as the environment's do: a constant action that
stalls a game runs to the suite's time limit, which ``--set env.time_limit=FRAMES`` shortens (the committed
RoadRunner figures: 18000 frames, 4,500 agent steps). Prints a table (mean, IQM with its 95 % bootstrap
interval over episodes) and writes JSON.

    python benchmarks/policy_baselines.py recipes/efficientzero_atari_cpu.yaml --option train=false \
        --episodes 16 --set target.task=assault --json baselines_assault.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import yaml

from xfer.envs.make import make_env
from xfer.envs.policies import random_policy
from xfer.plugins import get_registry
from xfer.recipe_io import load_recipe
from xfer.stats import aggregate, as_scores, interval


def policies(env: gymnasium.Env, task: str, seed: int) -> dict[str, Callable[[Any], Any]]:
    """Name → policy (observation → action): the suites' random policy (over the legal actions of a
    discrete space) and the constant actions."""
    out: dict[str, Callable[[Any], Any]] = {"random": random_policy(env, task, seed)}
    space = env.action_space
    if isinstance(space, gymnasium.spaces.Discrete):
        legal = out["random"].legal  # type: ignore[attr-defined]
        for a in (np.arange(int(space.n)) if legal is None else legal):
            out[f"constant {a}"] = lambda obs, a=int(a): a
    else:
        plus = np.eye(1, int(np.prod(space.shape)))[0].reshape(space.shape).astype(space.dtype)
        out["constant 0"] = lambda obs: np.zeros(space.shape, space.dtype)
        out["constant +1 (first entry)"] = lambda obs: plus
        out["constant -1 (first entry)"] = lambda obs: -plus
    return out


def run(env: gymnasium.Env, policy: Callable[[Any], Any], episodes: int, seed: int) -> list[float]:
    """Returns of ``episodes`` episodes, the k-th reset with ``seed + k``; the env's time limit ends them."""
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override")
    parser.add_argument("--option", action="append", default=[], help="env option key=value (YAML value)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    registry = get_registry()
    recipe = load_recipe(args.recipe, registry, args.overrides)
    task = recipe.target
    settings = recipe.env_for(task)
    options = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.option)}
    settings = settings.model_copy(update={"options": {**settings.options, **options}})
    env = make_env(task.suite, task.task, settings, args.seed, registry=registry)
    rows = []
    print(f"{task.suite} {task.task}, {args.episodes} episodes each\n")
    print("| policy | mean | IQM [95 % CI] |\n|---|---|---|")
    try:
        for name, policy in policies(env, task.task, args.seed).items():
            returns = run(env, policy, args.episodes, args.seed)
            scores = as_scores(returns)  # episodes as the runs of one task
            iqm, (low, high) = float(aggregate(scores, "iqm")), map(float, interval(scores, "iqm"))
            rows.append({"policy": name, "mean": float(np.mean(returns)), "iqm": iqm, "ci": [low, high],
                         "returns": returns})
            print(f"| {name} | {np.mean(returns):.1f} | {iqm:.1f} [{low:.1f}, {high:.1f}] |", flush=True)
    finally:
        env.close()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"suite": task.suite, "task": task.task, "options": options, "episodes": args.episodes,
                "seed": args.seed, "time_limit": settings.time_limit}
        args.json.write_text(json.dumps({**meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
