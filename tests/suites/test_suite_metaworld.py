"""The metaworld suite: tasks, flipped corner4 frames, seeded goals, scripted experts."""

from __future__ import annotations

import metaworld
import numpy as np
import pytest
from suite_checks import assert_frame
from xfer_plugins.metaworld import PAPER_TASKS, TASKS
from xfer_plugins.metaworld.policies import scripted_policy

from xfer.envs.policies import random_policy


def test_static_task_list_matches_metaworld() -> None:
    assert tuple(name.removesuffix("-v3") for name in metaworld.ALL_V3_ENVIRONMENTS) == TASKS
    assert set(PAPER_TASKS) <= set(TASKS)


def test_frame_is_upright(make) -> None:
    """Known scene: the wooden table (yellow-brown, green above blue) fills the bottom of the corner4 view,
    grey walls the top. Upside down (metaworld's raw frame) it is the other way round."""
    env = make("metaworld", "drawer-close")
    obs, _ = env.reset()
    assert_frame(obs["image"], (64, 64, 3))
    image = obs["image"].astype(np.float32)
    warmth = image[..., 1] - image[..., 2]
    assert warmth[-16:].mean() > warmth[:16].mean() + 4


def test_same_seed_same_goal_and_new_goal_each_reset(make) -> None:
    first = [make("metaworld", "push", seed=s, state=True).reset()[0] for s in (3, 3, 4)]
    assert first[0]["state"].shape == (39,)
    assert np.array_equal(first[0]["state"], first[1]["state"])
    assert np.array_equal(first[0]["image"], first[1]["image"])
    assert not np.array_equal(first[0]["state"][-3:], first[2]["state"][-3:])  # the goal
    env = make("metaworld", "push", seed=3, state=True)
    goals = [env.reset()[0]["state"][-3:] for _ in range(2)]
    assert not np.array_equal(goals[0], goals[1])


def test_success_and_time_limit(make) -> None:
    env = make("metaworld", "reach", time_limit=5)
    policy = random_policy(env, "reach", seed=0)
    obs, info = env.reset()
    for _ in range(5):
        obs, _, terminated, truncated, info = env.step(policy(obs))
    assert isinstance(info["success"], bool) and truncated and not terminated


@pytest.mark.parametrize("task", ["drawer-close", "button-press-topdown", "door-open"])
def test_scripted_expert_succeeds_from_pixels_only(make, task: str) -> None:
    """The agent sees pixels only; the expert reads the hidden state. With padded actions (CoWorld)."""
    env = make("metaworld", task, seed=1, pad_action_to=5)
    policy = scripted_policy(env, task, seed=1)
    obs, _ = env.reset()
    policy.reset()
    assert "state" not in obs
    for _ in range(500):
        obs, _, terminated, truncated, info = env.step(policy(obs))
        if info["success"] or terminated or truncated:
            break
    assert info["success"], f"{task}: scripted policy did not succeed"
