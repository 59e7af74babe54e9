"""The robodesk suite: gymnasium API, robodesk's own frames, seeding through the global RNG."""

from __future__ import annotations

import numpy as np
from PIL import Image
from suite_checks import assert_frame, correlation_upright
from xfer_plugins.robodesk import TASKS
from xfer_plugins.robodesk.env import RoboDesk


def test_static_task_list_matches_robodesk(make) -> None:
    env = make("robodesk", "open_slide")
    assert set(TASKS) == set(env.unwrapped.sim.all_tasks) and len(TASKS) == len(env.unwrapped.sim.all_tasks)


def test_frame_equals_robodesks_own_render(make, monkeypatch) -> None:
    """At default quality our persistent camera gives exactly robodesk's frame (its own code, run here with
    the Pillow alias it needs), so the image is the right way up by construction."""
    monkeypatch.setattr(Image, "ANTIALIAS", Image.LANCZOS, raising=False)
    env = make("robodesk", "open_slide", render_quality="default")
    obs, _ = env.reset()
    assert_frame(obs["image"], (64, 64, 3))
    reference = RoboDesk.render(env.unwrapped.sim)
    assert np.array_equal(obs["image"], reference)
    fast = make("robodesk", "open_slide")  # shadows off: darker (shadow passes add light), same scene
    same, flipped = correlation_upright(fast.reset()[0]["image"], reference)
    assert same > flipped + 0.3, (same, flipped)


def test_seeding_is_per_environment_and_leaves_global_rng_alone(make) -> None:
    np.random.seed(123)
    expected_global = np.random.random()
    np.random.seed(123)
    first = [make("robodesk", "push_green", seed=s, state=True).reset()[0] for s in (5, 5, 6)]
    assert np.random.random() == expected_global
    assert np.array_equal(first[0]["state"], first[1]["state"])
    assert np.array_equal(first[0]["image"], first[1]["image"])
    assert not np.array_equal(first[0]["state"], first[2]["state"])


def test_steps_with_dense_reward_and_success(make) -> None:
    env = make("robodesk", "open_drawer", time_limit=3)
    assert env.action_space.shape == (5,)
    env.reset()
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert 0.0 <= reward <= 1.0 and info["success"] in (True, False)
    assert truncated and obs["is_last"]
