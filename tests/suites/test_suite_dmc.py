"""The dmc suite: standard tasks and CoWorld's modified ones, rendered for real."""

from __future__ import annotations

import mujoco
import numpy as np
from dm_control import suite
from suite_checks import assert_frame, closer_to
from xfer_plugins.dmc import MODIFIED_TASKS, STANDARD_TASKS
from xfer_plugins.dmc.env import task_name
from xfer_plugins.dmc.modified import SHRUNK_SIZE

from xfer.envs.policies import random_policy


def test_static_task_list_matches_dm_control() -> None:
    assert tuple(task_name(domain, task) for domain, task in suite.ALL_TASKS) == STANDARD_TASKS
    assert set(MODIFIED_TASKS).isdisjoint(STANDARD_TASKS)


def test_walker_frame_is_upright_and_matches_dm_control(make) -> None:
    env = make("dmc", "walker-walk", render_quality="default")
    obs, _ = env.reset()
    assert_frame(obs["image"], (64, 64, 3))
    reference = env.unwrapped.physics.render(64, 64, camera_id=0)  # dm_control's own renderer
    same, flipped = closer_to(obs["image"], reference)
    assert same < 3 and flipped > 4 * same


def test_quadruped_uses_camera_2(make) -> None:
    env = make("dmc", "quadruped-walk", render_quality="default")
    obs, _ = env.reset()
    reference = env.unwrapped.physics.render(64, 64, camera_id=2)
    assert closer_to(obs["image"], reference)[0] < 3


def test_seeding(make) -> None:
    first = [make("dmc", "walker-walk", seed=s, state=True).reset()[0] for s in (7, 7, 8)]
    assert np.array_equal(first[0]["state"], first[1]["state"])
    assert np.array_equal(first[0]["image"], first[1]["image"])
    assert not np.array_equal(first[0]["state"], first[2]["state"])
    env = make("dmc", "walker-walk", seed=0, state=True)
    again = env.reset(seed=7)[0]
    assert np.array_equal(again["state"], first[0]["state"])


def test_random_policy_steps(make) -> None:
    env = make("dmc", "cheetah-run")
    policy = random_policy(env, "cheetah-run", seed=0)
    obs, _ = env.reset()
    for _ in range(5):
        action = policy(obs)
        assert env.action_space.contains(action)
        obs, reward, *_ = env.step(action)
    assert np.isfinite(reward)


def _physics(env):
    return env.unwrapped.physics


def test_slopes_tilt_gravity_floor_and_camera(make) -> None:
    flat = _physics(make("dmc", "walker-walk"))
    for task, sign in (("walker-uphill", -1), ("walker-downhill", +1), ("cheetah-uphill", -1)):
        env = make("dmc", task)
        physics = _physics(env)
        gravity = physics.model.opt.gravity
        np.testing.assert_allclose(gravity, [sign * 2.539, 0.0, -9.476], atol=2e-3)
        assert abs(np.linalg.norm(gravity) - 9.81) < 1e-4
        obs, _ = env.reset()
        assert_frame(obs["image"], (64, 64, 3))
        for _ in range(5):
            obs, reward, terminated, _, _ = env.step(env.action_space.sample())
        assert np.isfinite(reward) and not terminated
    uphill = _physics(make("dmc", "walker-uphill"))
    floor = mujoco.mj_name2id(flat.model.ptr, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    assert uphill.model.geom_size[floor][0] > flat.model.geom_size[floor][0]
    side = mujoco.mj_name2id(flat.model.ptr, mujoco.mjtObj.mjOBJ_CAMERA, "side")
    angle = 2 * np.degrees(np.arccos(abs(np.dot(flat.model.cam_quat[side], uphill.model.cam_quat[side]))))
    assert abs(angle - 15) < 0.1  # rolled by the tilt


def test_tilted_gravity_moves_a_passive_walker(make) -> None:
    """Tilted gravity pushes bodies along x: a passive fall drifts backward uphill, forward downhill."""
    drift = {}
    for task in ("walker-uphill", "walker-downhill"):
        env = make("dmc", task, seed=0)
        env.reset()
        for _ in range(40):
            env.step(np.zeros(6, np.float32))
        drift[task] = float(_physics(env).named.data.qpos["rootx"][0])
    assert drift["walker-uphill"] < drift["walker-downhill"]


def test_missing_foot_and_paw_are_shrunk(make) -> None:
    for task, standard, geom in (("walker-nofoot", "walker-walk", "right_foot"),
                                 ("cheetah-nopaw", "cheetah-run", "ffoot")):
        modified, original = _physics(make("dmc", task)), _physics(make("dmc", standard))
        gid = mujoco.mj_name2id(original.model.ptr, mujoco.mjtObj.mjOBJ_GEOM, geom)
        np.testing.assert_allclose(modified.model.geom_size[gid][:2], SHRUNK_SIZE)
        assert original.model.geom_size[gid][0] > 0.04
        np.testing.assert_allclose(modified.model.opt.gravity, [0, 0, -9.81])
        env = make("dmc", task)
        env.reset()
        for _ in range(5):
            assert np.isfinite(env.step(env.action_space.sample())[1])
