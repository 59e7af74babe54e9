"""The network's image_channels follow the environment's observation space unless the recipe sets them."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from helpers_muzero import CueBandit

from xfer.errors import XferError
from xfer.muzero.agent import fit_to_env
from xfer.muzero.config import EfficientZeroConfig


def _env(channels: int) -> CueBandit:
    env = CueBandit()
    env.observation_space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (16, 16, channels), np.uint8)})
    return env


@pytest.mark.parametrize(("channels", "expected"), [(1, 1), (3, 3), (4, 1), (12, 3)])
def test_channels_from_the_image_space(channels: int, expected: int) -> None:
    cfg = EfficientZeroConfig(preset="tiny")  # frame_stack 4
    assert fit_to_env(cfg, _env(channels)).image_channels == expected


def test_an_explicit_setting_wins_and_a_bad_shape_is_one_line() -> None:
    explicit = EfficientZeroConfig(preset="tiny", image_channels=3)
    assert fit_to_env(explicit, _env(4)).image_channels == 3
    with pytest.raises(XferError, match="not a multiple of frame_stack"):
        fit_to_env(EfficientZeroConfig(preset="tiny"), _env(6))


def test_network_state_dim_and_actions_from_a_state_space() -> None:
    from helpers_muzero import StateBandit

    cfg = fit_to_env(EfficientZeroConfig(preset="tiny"), StateBandit())
    assert (cfg.network, cfg.state_dim, cfg.n_actions) == ("mlp", 4, 4)
    assert fit_to_env(EfficientZeroConfig(preset="tiny"), CueBandit()).network == "conv"
