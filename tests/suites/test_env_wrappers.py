"""The common wrappers and make_env's checks, on real (cheap) environments."""

from __future__ import annotations

import numpy as np
import pytest

from xfer.envs.make import make_env
from xfer.envs.settings import EnvSettings
from xfer.envs.wrappers import FLAGS, agent_steps
from xfer.errors import XferError


def test_flags_and_time_limit_in_simulator_steps(make) -> None:
    env = make("dmc", "cartpole-balance", time_limit=20, action_repeat=2)
    obs, _ = env.reset()
    assert obs["is_first"] and not obs["is_last"] and not obs["is_terminal"]
    assert all(env.observation_space[k].contains(obs[k]) for k in FLAGS)
    steps = 0
    while True:
        obs, _, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
        steps += 1
        if terminated or truncated:
            break
    assert steps == agent_steps(20, 2) == 10
    assert truncated and not terminated
    assert obs["is_last"] and not obs["is_terminal"] and not obs["is_first"]


def test_action_repeat_sums_rewards(make) -> None:
    once = make("dmc", "cartpole-balance", action_repeat=1)
    twice = make("dmc", "cartpole-balance", action_repeat=2)
    once.reset(), twice.reset()
    action = np.zeros(1, np.float32)
    r1 = once.step(action)[1] + once.step(action)[1]
    r2 = twice.step(action)[1]
    assert r2 == pytest.approx(r1)


def test_pad_action_to_larger_size(make) -> None:
    env = make("metaworld", "reach", pad_action_to=5)
    assert env.action_space.shape == (5,)
    assert env.action_space.low.tolist() == [-1] * 5 and env.action_space.high.tolist() == [1] * 5
    env.reset()
    env.step(np.array([0.1, 0.2, 0.0, 0.5, 0.9], np.float32))  # the 5th entry is ignored
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(4, np.float32))


def test_pad_action_refuses_a_smaller_size() -> None:
    with pytest.raises(XferError, match="smaller"):
        make_env("metaworld", "reach", EnvSettings(pad_action_to=3))


def test_state_observation_is_optional(make) -> None:
    pixels = make("dmc", "cartpole-balance")
    assert "state" not in pixels.reset()[0]
    both = make("dmc", "cartpole-balance", state=True)
    obs = both.reset()[0]
    assert obs["state"].dtype == np.float32 and obs["state"].shape == both.observation_space["state"].shape


def test_image_size_is_a_setting(make) -> None:
    env = make("dmc", "cartpole-balance", image_size=32)
    assert env.reset()[0]["image"].shape == (32, 32, 3)


def test_unknown_names_are_one_clear_error() -> None:
    with pytest.raises(XferError, match="did you mean 'dmc'"):
        make_env("dcm", "walker-walk")
    with pytest.raises(XferError, match="did you mean 'walker-walk'"):
        make_env("dmc", "walker-wlak")
    with pytest.raises(XferError, match="did you mean 'walker-walk'"):
        make_env("dmc", "walker_walk")
    with pytest.raises(XferError, match="did you mean 'ms-pacman'"):
        make_env("atari", "MsPacman")
    with pytest.raises(XferError, match="frame_stak"):
        make_env("atari", "pong", EnvSettings(options={"frame_stak": 2}))


def test_state_only_environment_renders_nothing(make) -> None:
    env = make("dmc", "cartpole-balance", pixels=False, state=True)
    obs, _ = env.reset()
    assert set(obs) == {"state", "is_first", "is_last", "is_terminal"}
    env.step(np.zeros(1, np.float32))
    assert env.unwrapped.camera._renderer is None  # no GL context was ever made
    with pytest.raises(XferError, match="needs the state"):
        make_env("dmc", "cartpole-balance", EnvSettings(pixels=False))
