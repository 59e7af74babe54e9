"""The gym suite: real gymnasium environments behind xfer's observation and action conventions."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import gymnasium
import numpy as np
import pytest
import yaml
from suite_checks import assert_frame, closer_to
from xfer_plugins.gym import BOX2D, CLASSIC_CONTROL, MUJOCO, SPEC, TOY_TEXT

from xfer.envs.policies import random_policy
from xfer.errors import XferError
from xfer.plugins import get_registry
from xfer.recipe_io import RecipeError, validate_recipe

FAMILIES = {"classic_control": CLASSIC_CONTROL, "toy_text": TOY_TEXT, "box2d": BOX2D, "mujoco": MUJOCO}


def test_static_task_lists_match_gymnasium_registry() -> None:
    registered: dict[str, list[str]] = {family: [] for family in FAMILIES}
    for env_id, spec in gymnasium.registry.items():
        entry = spec.entry_point if isinstance(spec.entry_point, str) else ""
        family = entry.split(":")[0].split(".")[2:3]  # gymnasium.envs.<family>.<module>
        if entry.startswith("gymnasium.envs.") and family and family[0] in registered:
            registered[family[0]].append(env_id)
    assert {family: tuple(ids) for family, ids in registered.items()} == FAMILIES
    assert set(CLASSIC_CONTROL + TOY_TEXT) <= set(SPEC.tasks)
    assert (set(BOX2D) <= set(SPEC.tasks)) == (importlib.util.find_spec("Box2D") is not None)


def test_plugin_init_imports_nothing_heavy() -> None:
    code = ("import sys, xfer_plugins.gym\n"
            "print(sorted(m for m in ('gymnasium', 'Box2D', 'mujoco', 'torch') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"


def test_cartpole_state_and_discrete_actions(make) -> None:
    env = make("gym", "CartPole-v1")
    obs, info = env.reset()
    assert set(env.observation_space.spaces) == {"state", "is_first", "is_last", "is_terminal"}
    assert obs["state"].dtype == np.float32 and obs["state"].shape == (4,) and obs["is_first"]
    assert env.action_space == gymnasium.spaces.Discrete(2)
    assert info["legal_actions"].tolist() == [True, True]
    assert env.get_wrapper_attr("legal_action_mask").tolist() == [True, True]
    for action, push in ((np.int64(1), 1.0), (0, -1.0), (1, 1.0)):  # action 1 pushes right, 0 left
        velocity = obs["state"][1]
        obs, reward, *_ = env.step(action)
        assert np.array_equal(obs["state"], np.asarray(env.unwrapped.state, np.float32))
        assert np.sign(obs["state"][1] - velocity) == push
    assert reward == 1.0 and not obs["is_first"]


def test_acrobot_reaches_its_own_time_limit(make) -> None:
    env = make("gym", "Acrobot-v1")
    obs, _ = env.reset()
    assert obs["state"].shape == (6,) and env.action_space.n == 3
    steps = 0
    while True:
        steps += 1
        obs, reward, terminated, truncated, _ = env.step(0)
        if terminated or truncated:
            break
    assert steps == 500 and truncated and obs["is_last"] and not obs["is_terminal"]  # gymnasium's TimeLimit


def test_time_limit_setting_replaces_gymnasium_limit(make) -> None:
    env = make("gym", "MountainCarContinuous-v0", time_limit=7, action_repeat=2)
    env.reset()
    steps = 0
    while True:
        steps += 1
        obs, _, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
        if terminated or truncated:
            break
    assert steps == 4 and truncated and not obs["is_terminal"]  # 7 simulator steps = ceil(7 / 2) agent steps


@pytest.mark.parametrize(("action", "torque"), [(-1.0, -2.0), (0.5, 1.0), (1.0, 2.0), (3.0, 2.0)])
def test_box_actions_are_rescaled_from_unit_range(make, action: float, torque: float) -> None:
    """Pendulum's torque is in [-2, 2]: the agent's a in [-1, 1] maps to 2a (clipped), checked against the
    same environment stepped directly with the hand-computed torque."""
    env = make("gym", "Pendulum-v1", seed=3)
    assert env.action_space == gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
    env.reset()
    direct = gymnasium.make("Pendulum-v1")
    direct.reset(seed=3)
    obs, reward, *_ = env.step(np.array([action], np.float32))
    expected, expected_reward, *_ = direct.step(np.array([torque], np.float32))
    assert np.allclose(obs["state"], expected) and reward == pytest.approx(expected_reward)
    assert "legal_actions" not in env.step(np.zeros(1, np.float32))[-1]


def test_pixels_option_renders_resized_frames(make) -> None:
    env = make("gym", "CartPole-v1", image_size=48, options={"obs": "pixels"})
    obs, _ = env.reset()
    assert "state" not in obs
    assert_frame(obs["image"], (48, 48, 3))
    obs, *_ = env.step(1)
    reference = cv2.resize(env.unwrapped.render(), (48, 48), interpolation=cv2.INTER_AREA)
    same, flipped = closer_to(obs["image"], reference)
    assert same < 1 and flipped > 5 * same
    both = make("gym", "Pendulum-v1", options={"obs": "both"}).reset()[0]
    assert both["image"].shape == (64, 64, 3) and both["state"].shape == (3,)
    with pytest.raises(XferError, match="env.pixels is false"):
        make("gym", "CartPole-v1", pixels=False, options={"obs": "pixels"})


def test_seeding_is_reproducible(make) -> None:
    first = [make("gym", "Acrobot-v1", seed=s).reset()[0]["state"] for s in (4, 4, 5)]
    assert np.array_equal(first[0], first[1]) and not np.array_equal(first[0], first[2])
    env = make("gym", "Acrobot-v1", seed=0)
    assert np.array_equal(env.reset(seed=4)[0]["state"], first[0])
    assert not np.array_equal(env.reset()[0]["state"], first[0])  # the construction seed is not reused
    runs = []
    for _ in range(2):
        env, policy = make("gym", "Pendulum-v1", seed=9), None
        obs, _ = env.reset()
        policy = random_policy(env, "Pendulum-v1", seed=1)
        runs.append([env.step(policy(obs))[0]["state"] for _ in range(5)])
    assert np.array_equal(np.stack(runs[0]), np.stack(runs[1]))


def test_toy_text_observation_is_one_hot(make) -> None:
    obs, _ = make("gym", "FrozenLake-v1").reset()
    assert obs["state"].shape == (16,) and obs["state"].sum() == 1.0 and obs["state"][0] == 1.0


def test_unknown_id_names_close_matches(make) -> None:
    with pytest.raises(XferError) as info:
        make("gym", "CartPol-v1")
    assert "CartPole-v1" in info.value.message and "\n" not in info.value.message
    with pytest.raises(XferError, match="did you mean 'CartPole-v1'"):
        make("gym", "cartpole-v1")
    with pytest.raises(XferError, match="cannot import 'no_such_module'"):
        make("gym", "no_such_module:Thing-v0")
    recipe = {"method": "dreamer", "target": {"suite": "gym", "task": "Acrobat-v1"}, "dreamer": {}}
    with pytest.raises(RecipeError) as problems:
        validate_recipe(recipe, get_registry())
    assert problems.value.problems[0][0] == "target.task" and "Acrobot-v1" in problems.value.problems[0][1]


def test_third_party_id_after_its_module_is_imported(make) -> None:
    pytest.importorskip("ale_py")
    task = "ale_py:ALE/Pong-v5"
    validate_recipe({"method": "dreamer", "target": {"suite": "gym", "task": task}, "dreamer": {}},
                    get_registry())
    obs, info = make("gym", task, options={"obs": "pixels"}).reset()
    assert_frame(obs["image"], (64, 64, 3))
    assert info["legal_actions"].shape == (6,)


def test_lunar_lander_with_box2d(make) -> None:
    pytest.importorskip("Box2D")
    env = make("gym", "LunarLander-v3", options={"make_kwargs": {"continuous": True}})
    assert env.reset()[0]["state"].shape == (8,)
    assert env.action_space == gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)


@pytest.mark.parametrize(("inputs", "obs"), [("state", "state"), ("image", "pixels")])
def test_dreamer_runs_a_tiny_recipe_on_cartpole(tmp_path: Path, inputs: str, obs: str) -> None:
    from xfer.run.runner import start_run

    recipe = {
        "method": "dreamer", "name": "gym-cartpole", "device": "cpu", "seed": 0,
        "logdir": str(tmp_path / "runs"), "target": {"suite": "gym", "task": "CartPole-v1"},
        "env": {"time_limit": 60, "options": {"obs": obs}},
        "eval": {"every": 200, "episodes": 1, "video": True},
        "checkpoint": {"every": 200}, "logging": {"every": 100, "tensorboard": False, "live": False},
        "perf": {"threads": 1},
        "dreamer": {"inputs": [inputs], "model": {"preset": "tiny"},
                    "train": {"env_steps": 200, "prefill": 80, "pretrain": 2, "train_every": 40, "batch": 3,
                              "seq_len": 8}},
    }
    path = tmp_path / "gym-cartpole.yaml"
    path.write_text(yaml.safe_dump(recipe))
    rundir = start_run(path)
    assert json.loads((rundir / "run.json").read_text())["status"] == "done"
    rows = [json.loads(line) for line in (rundir / "metrics.jsonl").read_text().splitlines()]
    assert any(row.get("eval/return", 0) > 0 for row in rows) and any("wm/loss" in row for row in rows)
    assert bool(list((rundir / "videos").glob("*.mp4"))) == (obs == "pixels")  # state runs skip the video
