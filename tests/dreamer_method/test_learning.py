"""The dreamer baseline learns: DMC cartpole-balance from the state vector (slow; run with ``-m slow``).

Runs ``recipes/dreamer_cartpole_state.yaml`` as it is and compares its final greedy evaluation with a
uniformly random policy's return, measured here on the same environment (BENCHMARKS.md: about 300). The
recipe's comments say where it departs from the paper's DMC defaults and why. Measured greedy returns: seed 0
762 at 14k and 857 at the recipe's 20k (13 min), seed 1 677 at 14k, seed 2 559 at 14k and 726 at 20k.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from xfer.envs.make import make_env
from xfer.envs.settings import EnvSettings
from xfer.run.evaluate import run_episodes
from xfer.run.logger import read_metrics
from xfer.run.runner import start_run

RECIPE = Path(__file__).parents[2] / "recipes" / "dreamer_cartpole_state.yaml"


class RandomAgent:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, obs: dict[str, np.ndarray], state: None, explore: bool) -> tuple[np.ndarray, None]:
        return self.rng.uniform(-1, 1, (1, 1)).astype(np.float32), None


@pytest.mark.slow
def test_cartpole_balance_from_state_beats_random_clearly(tmp_path: Path) -> None:
    env = make_env("dmc", "cartpole-balance", EnvSettings(state=True, pixels=False, action_repeat=2), seed=0)
    random_result, _ = run_episodes(RandomAgent(0), env, episodes=5, seed=1000)
    still_result, _ = run_episodes(ConstantAgent(0.0), env, episodes=5, seed=1000)
    env.close()
    start = time.monotonic()
    rundir = start_run(RECIPE, overrides=[f"logdir={tmp_path}", "logging.live=false"])
    minutes = (time.monotonic() - start) / 60
    evals = [row for row in read_metrics(rundir / "metrics.jsonl") if "eval/return" in row]
    curve = ", ".join(f"{row['env_steps']}: {row['eval/return']:.0f}" for row in evals)
    print(f"random {random_result['eval/return']:.0f} ± {random_result['eval/return_std']:.0f}; "
          f"constant action 0: {still_result['eval/return']:.0f}; "
          f"dreamer (env steps: return) {curve}; {minutes:.1f} min")
    final = evals[-1]
    assert final["eval/return"] > random_result["eval/return"] + 3 * random_result["eval/return_std"] + 150


@pytest.mark.slow
def test_learns_the_fake_reach_task(tmp_path: Path) -> None:
    """A quick learning signal: on xfer.testing's point-reaching task (20-step episodes, reward minus the
    distance to the goal) the agent's greedy return rises far above a random policy's (measured: −13.7 after
    1000 steps, −3.7 with 100 % success after 6000 steps, about 6 minutes on a loaded 2-core CPU)."""
    import yaml

    from xfer.testing import fake_registry

    registry = fake_registry()
    env = make_env("fake", "reach", EnvSettings(state=True, time_limit=20), seed=0, registry=registry)
    random_result, _ = run_episodes(RandomAgent2D(0), env, episodes=20, seed=1000)
    recipe = {
        "method": "dreamer", "name": "fake", "device": "cpu", "logdir": str(tmp_path),
        "target": {"suite": "fake", "task": "reach"}, "env": {"state": True, "time_limit": 20},
        "eval": {"every": 2000, "episodes": 10, "video": False}, "checkpoint": {"every": 100000},
        "logging": {"every": 500, "tensorboard": False, "live": False}, "perf": {"threads": 1},
        "dreamer": {"mode": "online", "inputs": ["state"],
                    "model": {"preset": "tiny", "deter": 64, "hidden": 64, "mlp_units": 64, "mlp_layers": 2,
                              "actor_layers": 2, "critic_layers": 2, "reward_layers": 2},
                    "train": {"env_steps": 6000, "prefill": 500, "pretrain": 50, "train_every": 2,
                              "batch": 16, "seq_len": 16}}}
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump(recipe))
    rundir = start_run(path, registry=registry)
    final = [row for row in read_metrics(rundir / "metrics.jsonl") if "eval/return" in row][-1]
    assert final["eval/return"] > random_result["eval/return"] / 2, (final, random_result)
    assert final["eval/success"] >= 0.5


class ConstantAgent:
    def __init__(self, value: float) -> None:
        self.value = value

    def act(self, obs: dict[str, np.ndarray], state: None, explore: bool) -> tuple[np.ndarray, None]:
        return np.full((1, 1), self.value, np.float32), None


class RandomAgent2D(RandomAgent):
    def act(self, obs: dict[str, np.ndarray], state: None, explore: bool) -> tuple[np.ndarray, None]:
        return self.rng.uniform(-1, 1, (1, 2)).astype(np.float32), None
