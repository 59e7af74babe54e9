"""``make_env`` for the metaworld suite: a metaworld v3 task behind :class:`xfer.envs.base.SimEnv`."""

from __future__ import annotations

from typing import Any

import metaworld
import mujoco
import numpy as np

from xfer.envs import rendering
from xfer.envs.base import SimEnv
from xfer.envs.settings import EnvSettings
from xfer.envs.wrappers import agent_steps

STATE_SIZE = 39


def camera_name(model: mujoco.MjModel, camera: str | int) -> str:
    if isinstance(camera, str):
        return camera
    return mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, camera) or ""


def env_name(task: str) -> str:
    return f"{task}-v3"


class MetaWorldEnv(SimEnv):
    """One metaworld task with goals randomised at every reset, reproducibly from the seed.

    The corner cameras (``corner`` … ``corner4``) see the scene upside down; their frames are flipped
    vertically, which gives the papers' (mujoco-py era) frames. metaworld's own constructors either freeze
    the goal (``set_task``) or draw it from the global ``np.random``; the papers' setting (a new goal each
    episode) from a per-environment seed needs three of its flags, set below.
    """

    def __init__(self, task: str, settings: EnvSettings, seed: int) -> None:
        self.sim = metaworld.ALL_V3_ENVIRONMENTS[env_name(task)]()
        self.sim.__dict__.pop("sawyer_observation_space", None)  # a cached property of the observability
        self.sim._partially_observable = False  # the goal is part of the state (scripted policies read it)
        self.sim._freeze_rand_vec = False  # new goal and object positions at every reset ...
        self.sim.seeded_rand_vec = True  # ... drawn from the environment's seeded generator
        self.sim._set_task_called = True
        # metaworld refuses to step past its own limit; the common TimeLimit ends episodes at this length.
        repeat = settings.action_repeat
        self.sim.max_path_length = agent_steps(settings.time_limit, repeat) * repeat
        super().__init__(action_size=4, image_size=settings.image_size, state_size=STATE_SIZE,
                         include_state=settings.state, action_repeat=settings.action_repeat, seed=seed,
                         include_image=settings.pixels)
        self.camera = rendering.Camera(self.sim.model, self.sim.data, settings.image_size,
                                       settings.image_size, settings.camera, settings.render_quality)
        self._state = np.zeros(STATE_SIZE, np.float32)
        self.flip = camera_name(self.sim.model, settings.camera).startswith("corner")

    def _reset_sim(self, seed: int | None) -> dict[str, Any]:
        if seed is not None:
            self.sim.seed(seed)
        state, _ = self.sim.reset()
        self._state = state.astype(np.float32)
        return {"success": False}

    def _step_sim(self, action: np.ndarray) -> tuple[float, bool, dict[str, Any]]:
        state, reward, _, _, info = self.sim.step(np.clip(action, -1.0, 1.0))
        self._state = state.astype(np.float32)
        return float(reward), False, {**info, "success": bool(info["success"])}

    def _render_image(self) -> np.ndarray:
        image = self.camera.render()
        return np.ascontiguousarray(image[::-1]) if self.flip else image

    def current_state(self) -> np.ndarray:
        return self._state.copy()

    def close(self) -> None:
        self.camera.close()
        self.sim.close()


def make_env(task: str, settings: EnvSettings, seed: int) -> MetaWorldEnv:
    return MetaWorldEnv(task, settings, seed)
