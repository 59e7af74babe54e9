"""Every dataset a method reads (sources, targets) goes through one fit check: a misfit is refused, named.

Each method runs for real on the fake suite through :func:`xfer.run.runner.start_run` and must stop at its
dataset with a message naming every field that differs, before it builds or trains anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from xfer.data.dataset import DatasetFit, finalize_dataset, open_task_dataset
from xfer.data.episode import write_episode
from xfer.errors import XferError
from xfer.recipe import DatasetSpec, TaskSpec
from xfer.testing import fake_registry

pytest.importorskip("torch")


def write_dataset(path: Path, suite: str, task: str, image: int = 16, action: int = 2,
                  discrete: bool = False, rows: int = 6) -> Path:
    rng = np.random.default_rng(0)
    actions = (np.eye(action, dtype=np.float32)[rng.integers(action, size=rows)] if discrete
               else rng.uniform(-1, 1, (rows, action)).astype(np.float32))
    actions[0] = 0
    for index in range(2):
        write_episode(path, index, {
            "image": rng.integers(0, 256, (rows, image, image, 3), dtype=np.uint8),
            "state": rng.normal(size=(rows, 4)).astype(np.float32), "action": actions,
            "reward": np.linspace(0, 1, rows, dtype=np.float32), "is_first": np.arange(rows) == 0,
            "is_terminal": np.zeros(rows, bool), "success": np.zeros(rows, bool)})
    finalize_dataset(path, suite=suite, task=task, policy="random", seed=0, discrete=discrete,
                     success_defined=True, source="test")
    return path


def run_recipe(tmp_path: Path, method: str, config: dict[str, Any], **top: Any) -> None:
    from xfer.run.runner import start_run

    recipe = {"method": method, "name": f"fit-{method}", "device": "cpu", "logdir": str(tmp_path / "runs"),
              "datadir": str(tmp_path / "data"), "eval": {"every": 5, "episodes": 1, "video": False},
              "logging": {"every": 1, "tensorboard": False, "live": False}, "perf": {"threads": 1},
              method: config, **top}
    path = tmp_path / f"fit-{method}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    start_run(path, registry=fake_registry())


def task_with(path: Path, suite: str = "fake", task: str = "reach") -> dict[str, Any]:
    return {"suite": suite, "task": task, "dataset": {"path": str(path)}}


# ---- the core check -----------------------------------------------------------------------------------
def test_suite_and_task_are_always_checked(tmp_path: Path) -> None:
    path = write_dataset(tmp_path / "walker", "dmc", "walker-walk", image=64, action=6)
    spec = TaskSpec(suite="metaworld", task="drawer-close", dataset=DatasetSpec(path=path))
    with pytest.raises(XferError) as info:
        open_task_dataset(path, spec)
    message = info.value.message
    assert "suite: expected metaworld, found dmc" in message
    assert "task: expected drawer-close, found walker-walk" in message


def test_image_size_and_action_size_misfits_are_named(tmp_path: Path) -> None:
    path = write_dataset(tmp_path / "ds", "fake", "reach", image=32, action=2)
    spec = TaskSpec(suite="fake", task="reach", dataset=DatasetSpec(path=path, max_episodes=1))
    assert len(open_task_dataset(path, spec, DatasetFit(image_size=32, action_size=2))) == 1
    with pytest.raises(XferError) as info:
        open_task_dataset(path, spec, DatasetFit(image_size=64, action_size=4, discrete=True))
    message = info.value.message
    assert "image size: expected 64x64, found 32x32" in message
    assert "action size: expected 4, found 2" in message
    assert "discrete actions: expected True, found False" in message and "suite" not in message


# ---- each method, end to end up to its data -----------------------------------------------------------
def test_vid2act_refuses_a_source_from_another_suite(tmp_path: Path) -> None:
    """The reported defect: a DMC walker-walk dataset as a Meta-World-style source was accepted."""
    walker = write_dataset(tmp_path / "walker", "dmc", "walker-walk", image=64, action=6)
    with pytest.raises(XferError) as info:
        run_recipe(tmp_path, "vid2act", {}, env={"image_size": 64}, target={"suite": "fake", "task": "reach"},
                   sources=[task_with(walker, task="reach-far")])
    assert "suite: expected fake, found dmc" in info.value.message
    assert "task: expected reach-far, found walker-walk" in info.value.message
    assert not list((tmp_path / "runs").glob("*/*/teacher.pt"))


def test_vid2act_refuses_a_source_of_the_wrong_image_size(tmp_path: Path) -> None:
    small = write_dataset(tmp_path / "small", "fake", "reach-far", image=32)
    with pytest.raises(XferError, match="image size: expected 64x64, found 32x32"):
        run_recipe(tmp_path, "vid2act", {}, env={"image_size": 64}, target={"suite": "fake", "task": "reach"},
                   sources=[task_with(small, task="reach-far")])


def test_xtra_refuses_a_source_with_other_actions(tmp_path: Path) -> None:
    continuous = write_dataset(tmp_path / "cont", "fake", "reach-far", action=2)
    with pytest.raises(XferError) as info:
        run_recipe(tmp_path, "xtra", {}, target={"suite": "fake", "task": "reach"},
                   sources=[task_with(continuous, task="reach-far")])
    assert "action size: expected 18, found 2" in info.value.message
    assert "discrete actions: expected True, found False" in info.value.message


def test_xtra_refuses_a_source_of_another_task(tmp_path: Path) -> None:
    other = write_dataset(tmp_path / "other", "fake", "reach", action=18, discrete=True)
    with pytest.raises(XferError, match="task: expected reach-far, found reach"):
        run_recipe(tmp_path, "xtra", {}, target={"suite": "fake", "task": "reach"},
                   sources=[task_with(other, task="reach-far")])


def test_coworld_refuses_a_target_dataset_of_another_task(tmp_path: Path) -> None:
    other = write_dataset(tmp_path / "other", "fake", "reach-far")
    with pytest.raises(XferError, match="task: expected reach, found reach-far"):
        run_recipe(tmp_path, "coworld", {}, target=task_with(other),
                   sources=[{"suite": "fake", "task": "reach-far"}])


def test_dreamer_offline_refuses_a_dataset_with_another_action_size(tmp_path: Path) -> None:
    wide = write_dataset(tmp_path / "wide", "fake", "reach", image=64, action=5)
    with pytest.raises(XferError, match="action size: expected 2, found 5"):
        run_recipe(tmp_path, "dreamer", {"mode": "offline", "model": {"preset": "tiny"}},
                   env={"image_size": 64}, target=task_with(wide))
