"""Suite tests: real simulators, real (headless EGL) rendering."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before anything imports mujoco or dm_control

from collections.abc import Callable, Iterator  # noqa: E402

import gymnasium  # noqa: E402
import pytest  # noqa: E402

from xfer.envs.make import make_env  # noqa: E402
from xfer.envs.settings import EnvSettings  # noqa: E402

MakeEnv = Callable[..., gymnasium.Env]


@pytest.fixture
def make() -> Iterator[MakeEnv]:
    """``make(suite, task, seed=0, **settings)``; every environment made is closed after the test."""
    made: list[gymnasium.Env] = []

    def _make(suite: str, task: str, seed: int = 0, **settings: object) -> gymnasium.Env:
        env = make_env(suite, task, EnvSettings(**settings), seed=seed)
        made.append(env)
        return env

    yield _make
    for env in made:
        env.close()
