"""``make_env`` for the dmc suite: a dm_control environment behind :class:`xfer.envs.base.SimEnv`."""

from __future__ import annotations

from typing import Any

import numpy as np
from dm_control import suite
from dm_control.rl import control
from xfer_plugins.dmc.modified import MODIFICATIONS, modified_xml

from xfer.envs import rendering
from xfer.envs.base import SimEnv
from xfer.envs.settings import EnvSettings

CAMERA_BY_DOMAIN = {"quadruped": 2}  # every other domain: camera 0


def task_name(domain: str, task: str) -> str:
    """xfer's name for a dm_control (domain, task): ``ball_in_cup``, ``catch`` → ``ball-in-cup-catch``."""
    return f"{domain}-{task}".replace("_", "-").lower()


def standard_tasks() -> dict[str, tuple[str, str]]:
    return {task_name(domain, task): (domain, task) for domain, task in suite.ALL_TASKS}


def load_dm_env(name: str, seed: int) -> tuple[control.Environment, str]:
    """The dm_control environment for an xfer task name (no time limit: xfer's TimeLimit applies it)."""
    kwargs = {"random": np.random.RandomState(seed), "time_limit": float("inf")}
    if name in MODIFICATIONS:
        mod = MODIFICATIONS[name]
        standard = suite.load(mod.domain, mod.task, task_kwargs=kwargs)
        domain_module = getattr(suite, mod.domain)
        xml, assets = domain_module.get_model_and_assets()
        physics = domain_module.Physics.from_xml_string(modified_xml(mod, xml, assets), assets)
        env = control.Environment(physics, standard.task, time_limit=float("inf"),
                                  control_timestep=standard.control_timestep())
        return env, mod.domain
    domain, task = standard_tasks()[name]
    return suite.load(domain, task, task_kwargs=kwargs), domain


class DMCEnv(SimEnv):
    """Actions in [-1, 1] are mapped linearly onto the task's actuator range."""

    def __init__(self, name: str, settings: EnvSettings, seed: int) -> None:
        self.env, domain = load_dm_env(name, seed)
        spec = self.env.action_spec()
        self._low, self._high = spec.minimum.astype(np.float64), spec.maximum.astype(np.float64)
        state_size = sum(int(np.prod(s.shape)) for s in self.env.observation_spec().values())
        super().__init__(action_size=spec.shape[0], image_size=settings.image_size, state_size=state_size,
                         include_state=settings.state, action_repeat=settings.action_repeat, seed=seed,
                         include_image=settings.pixels)
        camera = settings.camera if settings.camera is not None else CAMERA_BY_DOMAIN.get(domain, 0)
        physics = self.env.physics
        self.camera = rendering.Camera(physics.model.ptr, physics.data.ptr, settings.image_size,
                                       settings.image_size, camera, settings.render_quality)
        self._observation: dict[str, np.ndarray] = {}

    @property
    def physics(self) -> Any:
        return self.env.physics

    def _reset_sim(self, seed: int | None) -> dict[str, Any]:
        if seed is not None:
            self.env.task.random.seed(seed)
        self._observation = self.env.reset().observation
        return {}

    def _step_sim(self, action: np.ndarray) -> tuple[float, bool, dict[str, Any]]:
        scaled = self._low + (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (self._high - self._low)
        step = self.env.step(scaled)
        self._observation = step.observation
        return float(step.reward or 0.0), step.last(), {}  # no time limit here: last() means terminated

    def _render_image(self) -> np.ndarray:
        return self.camera.render()

    def current_state(self) -> np.ndarray:
        parts = [np.asarray(v, dtype=np.float32).ravel() for v in self._observation.values()]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def close(self) -> None:
        self.camera.close()
        self.env.close()


def make_env(task: str, settings: EnvSettings, seed: int) -> DMCEnv:
    return DMCEnv(task, settings, seed)
