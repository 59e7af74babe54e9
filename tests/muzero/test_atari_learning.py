"""EfficientZero learns a real Atari game on the CPU (slow; run with ``-m slow``).

Runs ``recipes/efficientzero_atari_cpu.yaml`` on Assault at half its budget (5,000 agent steps, 800
updates, the same updates per step and off-policy correction per transition) and compares the final greedy
evaluation with two floors measured here on the same environment: a uniformly random policy over the
game's legal actions (about 210) and the best constant action, UP (fire upwards; 383 over 16 episodes in
``benchmarks/results/efficientzero_atari/baselines_assault.json``), which an agent that learned nothing
but to shoot can reach. Measured at 5,000 agent steps in the recipe's full runs: see the results README.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from xfer.envs.make import make_env
from xfer.envs.policies import random_policy
from xfer.plugins import get_registry
from xfer.recipe_io import load_recipe
from xfer.run.logger import read_metrics
from xfer.run.runner import start_run

pytest.importorskip("ale_py")

RECIPE = Path(__file__).parents[2] / "recipes" / "efficientzero_atari_cpu.yaml"
UP = 2  # Assault's "fire upwards"


def _returns(env, policy, episodes: int, seed: int) -> list[float]:
    out = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total, done = total + float(reward), terminated or truncated
        out.append(total)
    return out


@pytest.mark.slow
def test_assault_beats_random_and_the_best_constant_action(tmp_path: Path) -> None:
    settings = load_recipe(RECIPE, get_registry()).env
    settings = settings.model_copy(update={"options": {**settings.options, "train": False}})
    env = make_env("atari", "assault", settings, seed=0)
    random = _returns(env, random_policy(env, "assault", 1000), 8, 1000)
    constant = _returns(env, lambda obs: UP, 8, 1000)
    env.close()
    start = time.monotonic()
    overrides = [f"logdir={tmp_path}", "logging.live=false", "efficientzero.selfplay.env_steps=5000",
                 "efficientzero.model.training_steps=800", "eval.every=5000", "checkpoint.every=5000"]
    rundir = start_run(RECIPE, overrides=overrides)
    minutes = (time.monotonic() - start) / 60
    evals = [row for row in read_metrics(rundir / "metrics.jsonl") if "eval/return" in row]
    curve = ", ".join(f"{row['env_steps']}: {row['eval/return']:.0f}" for row in evals)
    print(f"random {np.mean(random):.0f} ± {np.std(random):.0f}; constant UP {np.mean(constant):.0f}; "
          f"efficientzero (agent steps: return) {curve}; {minutes:.1f} min")
    final = evals[-1]["eval/return"]
    assert final > np.mean(random) + 2 * np.std(random)
    assert final > np.mean(constant)
