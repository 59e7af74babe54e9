"""Environment speed per suite: agent steps per second without rendering, with MuJoCo's default rendering,
with xfer's fast rendering, and vectorised over worker processes. Prints a Markdown table.

    python benchmarks/env_speed.py                     # every suite, ~3 s per cell
    python benchmarks/env_speed.py --seconds 1 --suites dmc atari --workers 2

An agent step is ``action_repeat`` simulator steps (DMC 2, Atari 4 frames, Meta-World and RoboDesk 1).
Random actions; episodes reset when they end. Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from xfer.envs.make import make_env, make_vector_env
from xfer.envs.settings import EnvSettings
from xfer.plugins import get_registry

CASES: dict[str, list[str]] = {
    "dmc": ["walker-walk", "quadruped-walk"],
    "metaworld": ["door-open"],
    "robodesk": ["open_slide"],
    "atari": ["ms-pacman"],
}
MUJOCO_SUITES = ("dmc", "metaworld", "robodesk")


def steps_per_second(settings: EnvSettings, suite: str, task: str, seconds: float) -> float:
    env = make_env(suite, task, settings, seed=0)
    try:
        env.reset()
        env.action_space.seed(0)
        for _ in range(2):  # warm-up: the first render makes the GL context
            env.step(env.action_space.sample())
        steps, start = 0, time.perf_counter()
        while steps < 3 or time.perf_counter() - start < seconds:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            steps += 1
            if terminated or truncated:
                env.reset()
        return steps / (time.perf_counter() - start)
    finally:
        env.close()


def vector_steps_per_second(settings: EnvSettings, suite: str, task: str, n: int, seconds: float) -> float:
    venv = make_vector_env(suite, task, settings, seed=0, n=n)
    try:
        venv.reset(seed=0)
        for _ in range(2):
            venv.step(venv.action_space.sample())
        steps, start = 0, time.perf_counter()
        while steps < 3 or time.perf_counter() - start < seconds:
            venv.step(venv.action_space.sample())
            steps += 1
        return n * steps / (time.perf_counter() - start)
    finally:
        venv.close()


def row(suite: str, task: str, seconds: float, workers: int) -> list[str]:
    defaults = get_registry().suite(suite).defaults
    fast = EnvSettings(render_quality="fast")
    if suite in MUJOCO_SUITES:
        state_only = steps_per_second(EnvSettings(pixels=False, state=True), suite, task, seconds)
        default = steps_per_second(EnvSettings(render_quality="default"), suite, task, seconds)
    else:
        state_only = default = float("nan")
    single = steps_per_second(fast, suite, task, seconds)
    vector = vector_steps_per_second(fast, suite, task, workers, seconds) if workers > 1 else float("nan")
    size = defaults.get("image_size")
    return [f"{suite} {task}", f"{size}×{size}", str(defaults.get("action_repeat", 1)),
            *(_fmt(v) for v in (state_only, default, single, vector))]


def _fmt(value: float) -> str:
    return "—" if np.isnan(value) else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per cell")
    parser.add_argument("--suites", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes for the vector column")
    args = parser.parse_args()
    header = ["suite / task", "image", "action repeat", "no rendering", "default rendering", "fast rendering",
              f"fast, {args.workers} workers (total)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for suite in args.suites:
        for task in CASES[suite]:
            lines.append("| " + " | ".join(row(suite, task, args.seconds, args.workers)) + " |")
            print(lines[-1], flush=True)
    backend = os.environ.get("MUJOCO_GL", "-")
    print(f"\nAgent steps per second ({os.cpu_count()} cores, MUJOCO_GL={backend}):\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
