"""The atari suite: EfficientZero preprocessing, legal-action masks, episodic life for training."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from ale_py import roms
from suite_checks import assert_frame, closer_to
from xfer_plugins.atari import TASKS, XTRA_GAMES
from xfer_plugins.atari.env import legal_action_mask

from xfer.envs.policies import random_policy

# Table 5 of the XTRA paper: the size of each game's minimal action set.
XTRA_ACTIONS = {"alien": 18, "amidar": 10, "assault": 7, "bank-heist": 18, "carnival": 6, "centipede": 18,
                "demon-attack": 6, "ms-pacman": 9, "phoenix": 8, "wizard-of-wor": 10, "battle-zone": 18,
                "hero": 18, "krull": 18, "seaquest": 18, "pooyan": 6, "riverraid": 18, "video-pinball": 9,
                "yars-revenge": 18}


def test_static_task_list_matches_ale() -> None:
    assert tuple(rom.replace("_", "-") for rom in roms.get_all_rom_ids()) == TASKS
    assert len(XTRA_GAMES) == 18 and set(XTRA_GAMES) == set(XTRA_ACTIONS)


def test_legal_action_masks_match_the_paper() -> None:
    for game, count in XTRA_ACTIONS.items():
        mask = legal_action_mask(game)
        assert mask.shape == (18,) and mask.sum() == count and mask[0], game


def test_rgb_observation_and_legal_actions(make) -> None:
    env = make("atari", "ms-pacman")
    obs, info = env.reset()
    assert env.action_space.n == 18
    assert_frame(obs["image"], (96, 96, 12))  # 4 RGB frames, EfficientZero's and XTRA's input
    assert np.array_equal(obs["image"][..., :3], obs["image"][..., 9:])  # a reset repeats its first frame
    assert np.array_equal(info["legal_actions"], legal_action_mask("ms-pacman"))
    policy = random_policy(env, "ms-pacman", seed=0)
    for _ in range(20):
        action = policy(obs)
        assert info["legal_actions"][action]
        previous = obs["image"]
        obs, reward, terminated, truncated, info = env.step(action)
    assert obs["image"].shape == (96, 96, 12) and info["episode_frame_number"] >= 80
    assert np.array_equal(obs["image"][..., :9], previous[..., 3:])  # frames shift by one, newest last
    screen = env.unwrapped.ale.getScreenRGB()
    reference = cv2.resize(screen, (96, 96), interpolation=cv2.INTER_AREA)
    same, flipped = closer_to(obs["image"][..., 9:], reference)  # channel order R, G, B as ALE gives it
    assert same < flipped / 2 and same < closer_to(obs["image"][..., 9:], reference[..., ::-1])[0]


def test_gray_observation(make) -> None:
    """``color: gray``: EfficientZero's gray_scale setting, one channel per frame, 96×96×4."""
    env = make("atari", "ms-pacman", options={"color": "gray"})
    obs, _ = env.reset()
    assert env.observation_space["image"].shape == (96, 96, 4)
    for _ in range(20):
        obs, *_ = env.step(0)
    assert_frame(obs["image"], (96, 96, 4))
    screen = env.unwrapped.ale.getScreenGrayscale()
    reference = cv2.resize(screen, (96, 96), interpolation=cv2.INTER_AREA)
    same, flipped = closer_to(obs["image"][..., -1], reference)  # newest frame last
    assert same < flipped / 2


def test_seeding(make) -> None:
    first = [make("atari", "breakout", seed=s).reset() for s in (0, 0)]
    assert np.array_equal(first[0][0]["image"], first[1][0]["image"])
    noops = {make("atari", "breakout", seed=s).reset()[1]["episode_frame_number"] for s in range(4)}
    assert len(noops) > 1  # random no-op starts


def test_frame_stack_option(make) -> None:
    assert make("atari", "pong", options={"frame_stack": 1}).reset()[0]["image"].shape == (96, 96, 3)
    gray = make("atari", "pong", options={"frame_stack": 2, "color": "gray"}).reset()[0]["image"]
    assert gray.shape == (96, 96, 2)


@pytest.mark.parametrize("train", [True, False])
def test_episodic_life_and_clipping_only_for_training(make, train: bool) -> None:
    env = make("atari", "breakout", options={"train": train})
    env.reset(seed=3)  # a seeded first reset must not leave the construction seed behind for later resets
    rng, lives_at_end = np.random.default_rng(0), None
    for _ in range(3000):
        obs, reward, terminated, truncated, info = env.step(int(rng.integers(4)))  # breakout's 4 actions
        assert reward in (0.0, 1.0) or not train
        if terminated or truncated:
            lives_at_end = info["lives"]
            break
    assert lives_at_end is not None and obs["is_terminal"]
    assert (lives_at_end > 0) == train  # training: a lost life ends the episode; evaluation: game over
    if train:
        obs, info = env.reset()
        assert info["lives"] == lives_at_end and obs["is_first"]  # the game goes on
