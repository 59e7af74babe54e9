"""Helpers for testing xfer and third-party plugins: a tiny fake suite, a tiny method, a smoke run.

``FAKE_SUITE`` is a cheap point-reaching environment with xfer's observation convention (``image``,
``state``, ``is_first``/``is_last``/``is_terminal``, ``info["success"]``). ``FAKE_METHOD`` is a small
deterministic method that trains a linear policy online; it follows the resume contract of
:mod:`xfer.run.context` and so doubles as the reference for exact resume. :func:`smoke_run` runs any
registered method for a couple of steps on the fake suite, so a plugin package can test itself::

    from xfer.testing import smoke_run
    def test_my_method(tmp_path):
        rundir = smoke_run("my-method", {"steps": 2}, tmp_path, plugins={"mine": my_plugin_module})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from xfer.envs.settings import EnvSettings
from xfer.hookspecs import hookimpl
from xfer.registry import MethodSpec, SuiteSpec


class FakeReachEnv(gym.Env):
    """A point in [-1, 1]^2 moves by the action; reward is minus the distance to a goal fixed per task."""

    def __init__(self, task: str, settings: EnvSettings) -> None:
        self.goal = np.array([0.5, 0.5] if task == "reach" else [0.9, -0.9], np.float32)
        self.size = settings.image_size or 16
        self.limit = (settings.time_limit or 10) // (settings.action_repeat or 1)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, (self.size, self.size, 3), np.uint8),
            "state": gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
            "is_first": gym.spaces.MultiBinary(1), "is_last": gym.spaces.MultiBinary(1),
            "is_terminal": gym.spaces.MultiBinary(1),
        })
        self.pos = np.zeros(2, np.float32)
        self.t = 0

    def _obs(self, first: bool, last: bool) -> dict[str, Any]:
        image = np.zeros((self.size, self.size, 3), np.uint8)
        row, col = ((1 - self.pos[::-1]) / 2 * (self.size - 1)).round().astype(int)
        image[row, col] = 255
        state = np.concatenate([self.pos, self.goal]).astype(np.float32)
        return {"image": image, "state": state, "is_first": first, "is_last": last, "is_terminal": False}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self.t = 0
        return self._obs(True, False), {"success": False}

    def step(self, action: np.ndarray) -> Any:
        self.pos = np.clip(self.pos + 0.2 * np.asarray(action, np.float32), -1, 1)
        self.t += 1
        distance = float(np.linalg.norm(self.pos - self.goal))
        truncated = self.t >= self.limit
        return self._obs(False, truncated), -distance, False, truncated, {"success": distance < 0.1}


def make_fake_env(task: str, settings: EnvSettings, seed: int) -> gym.Env:
    env = FakeReachEnv(task, settings)
    env.reset(seed=seed)
    return env


class RandomPolicy:
    def __init__(self, env: gym.Env, task: str, seed: int) -> None:
        self.space = env.action_space
        self.space.seed(seed)

    def reset(self) -> None:
        pass

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.space.sample()


def fake_random_policy(env: gym.Env, task: str, seed: int) -> RandomPolicy:
    return RandomPolicy(env, task, seed)


FAKE_SUITE = SuiteSpec(
    name="fake", tasks=("reach", "reach-far"), make_env="xfer.testing:make_fake_env",
    defaults={"image_size": 16, "action_repeat": 1, "time_limit": 10},
    policies={"random": "xfer.testing:fake_random_policy"}, extra="dev",
    description="a tiny point-reaching environment for tests")


class FakeMethodConfig(BaseModel):
    """Options of the ``fake-linear`` method."""

    model_config = ConfigDict(extra="forbid")
    steps: int = Field(20, ge=1, description="environment steps")
    batch: int = Field(4, ge=1)
    lr: float = Field(0.05, gt=0)
    noise: float = Field(0.3, ge=0)
    fail_at: int | None = Field(None, description="raise an error at this step (tests failure handling)")


FAKE_METHOD = MethodSpec(
    name="fake-linear", config=FakeMethodConfig, run="xfer.testing_method:run",
    load_agent="xfer.testing_method:load_agent", extra="dev",
    description="a tiny deterministic online method (for tests and as a template)")


class FakePlugin:
    """A plugin object registering the fake suite and method (pass it to ``load_plugins(extra=...)``)."""

    @hookimpl
    def xfer_register_suites(self, register: Any) -> None:
        register(FAKE_SUITE)

    @hookimpl
    def xfer_register_methods(self, register: Any) -> None:
        register(FAKE_METHOD)


def fake_registry(extra: dict[str, object] | None = None) -> Any:
    """The installed plugins plus the fake suite and method (and any ``extra`` plugin objects)."""
    from xfer.plugins import load_plugins

    return load_plugins(extra={"xfer-testing": FakePlugin(), **(extra or {})}).registry


def smoke_run(method: str, config: dict[str, Any], workdir: Path, plugins: dict[str, object] | None = None,
              task: str = "reach", steps_override: dict[str, Any] | None = None) -> Path:
    """Run ``method`` with ``config`` on the fake suite's ``task`` in ``workdir``; return the run dir."""
    import yaml

    from xfer.run.runner import start_run

    recipe = {
        "method": method, "name": f"smoke-{method}", "device": "cpu", "logdir": str(workdir / "runs"),
        "datadir": str(workdir / "data"), "target": {"suite": "fake", "task": task},
        "sources": [{"suite": "fake", "task": "reach-far"}],
        "eval": {"every": 5, "episodes": 1, "video": False}, "checkpoint": {"every": 5},
        "logging": {"every": 1, "tensorboard": False, "live": False}, method: config,
        **(steps_override or {}),
    }
    path = workdir / f"smoke-{method}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return start_run(path, registry=fake_registry(plugins))


def install_plugin_distribution(site: Path, name: str, modules: dict[str, str],
                                entry_point: str) -> dict[str, str]:
    """Write a plugin as a real installed distribution into the folder ``site``: the ``modules``
    (``{module name: source}``) and a ``<name>-0.0.0.dist-info`` whose ``xfer`` entry point is
    ``entry_point`` (``"key = module:attribute"``), exactly how pip leaves a third-party plugin. Returns the
    environment variables (``PYTHONPATH``) under which a subprocess (``xfer ...``) finds it."""
    import os

    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)
    dist = site / f"{name.replace('-', '_')}-0.0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.0\n")
    (dist / "entry_points.txt").write_text(f"[xfer]\n{entry_point}\n")
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)}
