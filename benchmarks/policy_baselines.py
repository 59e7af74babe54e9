"""Returns of policies that learn nothing, on a recipe's target task with the recipe's environment settings.

The floor a learning claim has to clear: a uniformly random policy and every constant action (discrete
spaces; for box spaces the zero action and each corner of one coordinate), ``--episodes`` episodes each,
with the evaluation options of the method when given (``--option train=false`` for Atari: the game's own
reward over whole games, as ``efficientzero`` evaluates). Prints a table (mean, IQM with its 95 %
bootstrap interval over episodes) and writes JSON.

    python benchmarks/policy_baselines.py recipes/efficientzero_atari_cpu.yaml --option train=false \
        --episodes 16 --set target.task=assault --json baselines_assault.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gymnasium
import numpy as np
import yaml

from xfer.envs.make import make_env
from xfer.plugins import get_registry
from xfer.recipe_io import load_recipe
from xfer.stats import aggregate, as_scores, interval


def legal_actions(env: gymnasium.Env) -> np.ndarray | None:
    """The legal actions of a discrete space (Atari's full 18-action head masks the game's others)."""
    if not isinstance(env.action_space, gymnasium.spaces.Discrete):
        return None
    try:
        return np.flatnonzero(np.asarray(env.get_wrapper_attr("legal_action_mask"), bool))
    except AttributeError:
        return np.arange(int(env.action_space.n))


def policies(env: gymnasium.Env) -> dict[str, object]:
    """Name → action, or ``None`` for uniformly random (over the legal actions)."""
    out: dict[str, object] = {"random": None}
    space, legal = env.action_space, legal_actions(env)
    if legal is not None:
        out.update({f"constant {a}": int(a) for a in legal})
    else:
        out["constant 0"] = np.zeros(space.shape, space.dtype)
        out["constant +1 (first entry)"] = np.eye(1, int(np.prod(space.shape)))[0].reshape(space.shape)
        out["constant -1 (first entry)"] = -out["constant +1 (first entry)"]
    return out


def run(env: gymnasium.Env, action: object, episodes: int, seed: int, max_steps: int) -> list[float]:
    rng = np.random.default_rng(seed)
    legal = legal_actions(env)
    env.action_space.seed(seed)
    returns = []
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        total, done, steps = 0.0, False, 0
        while not done and steps < max_steps:
            if action is not None:
                act = action
            else:
                act = env.action_space.sample() if legal is None else int(rng.choice(legal))
            _, reward, terminated, truncated, _ = env.step(act)
            total, done, steps = total + float(reward), terminated or truncated, steps + 1
        returns.append(total)
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override")
    parser.add_argument("--option", action="append", default=[], help="env option key=value (YAML value)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--max-steps", type=int, default=27_000, help="agent steps per episode at most")
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
        for name, action in policies(env).items():
            returns = run(env, action, args.episodes, args.seed, args.max_steps)
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
                "seed": args.seed}
        args.json.write_text(json.dumps({**meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
