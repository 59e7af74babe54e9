"""Vector environments: worker processes with dict observations."""

from __future__ import annotations

import gymnasium
import numpy as np

from xfer.envs.make import make_vector_env
from xfer.envs.settings import EnvSettings


def test_async_vector_env_with_two_workers() -> None:
    venv = make_vector_env("dmc", "cartpole-balance", EnvSettings(state=True, time_limit=8), seed=3, n=2)
    try:
        assert isinstance(venv, gymnasium.vector.AsyncVectorEnv)
        obs, _ = venv.reset()
        assert obs["image"].shape == (2, 64, 64, 3) and obs["state"].shape == (2, 5)
        assert obs["is_first"].all()
        assert not np.array_equal(obs["state"][0], obs["state"][1])  # seeds 3 and 4
        for _ in range(4):  # 4 agent steps = 8 simulator steps: both episodes end together
            obs, reward, terminated, truncated, _ = venv.step(venv.action_space.sample())
        assert truncated.all() and obs["is_last"].all() and reward.shape == (2,)
        obs, *_ = venv.step(venv.action_space.sample())  # gymnasium's next-step autoreset
        assert obs["is_first"].all()
    finally:
        venv.close()


def test_sync_vector_env_for_one() -> None:
    venv = make_vector_env("dmc", "cartpole-balance", EnvSettings(), seed=0, n=1)
    try:
        assert isinstance(venv, gymnasium.vector.SyncVectorEnv)
        assert venv.reset()[0]["image"].shape == (1, 64, 64, 3)
    finally:
        venv.close()
