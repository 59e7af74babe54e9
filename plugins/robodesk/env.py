"""``make_env`` for the robodesk suite: robodesk's environment behind :class:`xfer.envs.base.SimEnv`.

Adaptations, all in this module (site-packages stays untouched):
- robodesk builds a new dm_control camera (and scene) for every frame and resizes with
  ``PIL.Image.ANTIALIAS``, which Pillow 10 removed. :class:`RoboDeskSim` renders through one persistent
  camera with the same view (distance 1.8, azimuth 90, elevation -60, 120×120), crops and resizes exactly
  as robodesk does (Lanczos; identical frames at default quality), and renders once per agent step
  instead of once per simulator step.
- robodesk draws its reset noise from the global ``np.random``: :func:`numpy_global_rng` lends it the
  environment's own generator during reset and restores the caller's global state afterwards.
- robodesk speaks the old gym API; :class:`RoboDeskEnv` speaks gymnasium's.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import mujoco
import numpy as np
from PIL import Image

from xfer.envs import rendering
from xfer.envs.base import SimEnv
from xfer.envs.settings import EnvSettings

with contextlib.redirect_stderr(io.StringIO()):  # the old gym package prints a deprecation notice
    from robodesk import RoboDesk

RENDER_SIZE = 120
CROP_BOX = (16.75, 25.0, 105.0, 88.75)  # robodesk's crop of the 120×120 frame
VIEW = {"distance": 1.8, "azimuth": 90.0, "elevation": -60.0, "lookat": (0.0, 0.535, 1.1)}


@contextlib.contextmanager
def numpy_global_rng(rng: np.random.RandomState) -> Iterator[None]:
    """Let code that draws from the global ``np.random`` draw from ``rng`` instead (not thread-safe)."""
    saved = np.random.get_state()
    np.random.set_state(rng.get_state())
    try:
        yield
    finally:
        rng.set_state(np.random.get_state())
        np.random.set_state(saved)


class RoboDeskSim(RoboDesk):
    """robodesk's simulation with a persistent camera; observations are rendered only when asked for."""

    def __init__(self, task: str, image_size: int, quality: rendering.Quality) -> None:
        super().__init__(task=task, reward="dense", action_repeat=1, episode_length=None,
                         image_size=image_size)
        view = mujoco.MjvCamera()
        view.type = mujoco.mjtCamera.mjCAMERA_FREE
        view.distance, view.azimuth, view.elevation = VIEW["distance"], VIEW["azimuth"], VIEW["elevation"]
        view.lookat[:] = VIEW["lookat"]
        physics = self.physics
        self.camera = rendering.Camera(physics.model.ptr, physics.data.ptr, RENDER_SIZE, RENDER_SIZE, view,
                                       quality)

    def render(self, mode: str = "rgb_array", resize: bool = True) -> np.ndarray:
        image = self.camera.render()
        if not resize:
            return image
        cropped = Image.fromarray(image).crop(box=CROP_BOX)
        return np.asarray(cropped.resize((self.image_size, self.image_size), resample=Image.LANCZOS))

    def _get_obs(self) -> dict[str, np.ndarray]:
        return {}  # robodesk would render here at every simulator step; RoboDeskEnv renders on demand

    def task_success(self) -> bool:
        return bool(self.reward_functions[self.task]("success"))


class RoboDeskEnv(SimEnv):
    def __init__(self, task: str, settings: EnvSettings, seed: int) -> None:
        self.sim = RoboDeskSim(task, settings.image_size, settings.render_quality)
        self.rng = np.random.RandomState(seed)
        data = self.sim.physics.data
        super().__init__(action_size=self.sim.action_dim, image_size=settings.image_size,
                         state_size=len(data.qpos) + len(data.qvel) + 3, include_state=settings.state,
                         action_repeat=settings.action_repeat, seed=seed,
                         include_image=settings.pixels)

    def _reset_sim(self, seed: int | None) -> dict[str, Any]:
        if seed is not None:
            self.rng = np.random.RandomState(seed)
        with numpy_global_rng(self.rng):
            self.sim.reset()
        return {"success": False}

    def _step_sim(self, action: np.ndarray) -> tuple[float, bool, dict[str, Any]]:
        _, reward, _, _ = self.sim.step(np.clip(action, -1.0, 1.0))
        return float(reward), False, {"success": self.sim.task_success()}

    def _render_image(self) -> np.ndarray:
        return self.sim.render()

    def current_state(self) -> np.ndarray:
        physics = self.sim.physics
        end_effector = physics.named.data.site_xpos["end_effector"]
        return np.concatenate([physics.data.qpos, physics.data.qvel, end_effector]).astype(np.float32)

    def close(self) -> None:
        self.sim.camera.close()


def make_env(task: str, settings: EnvSettings, seed: int) -> RoboDeskEnv:
    return RoboDeskEnv(task, settings, seed)
