"""Offscreen MuJoCo rendering with a quality switch, shared by the MuJoCo suites (Meta-World, DMC, RoboDesk).

MuJoCo's defaults (2048² shadow maps, 4× multisampling, reflections) make small frames 5-15× slower on a
CPU renderer. ``render_quality="fast"`` (the default) turns those three off. Measured on this project's
2-core machine (Mesa llvmpipe through EGL), frames/s default → shadows off → multisampling off → both off:
walker-walk 64×64 25 → 76 → 44 → 226; Meta-World door-open 64×64 5 → 23 → 7 → 53; RoboDesk 120×120
1 → 5 → 2 → 18. Reflections off on top: walker 193 → 469, RoboDesk 12 → 22, for < 0.4 grey levels of
change. The skybox stays on: turning it off changes the picture, not just its finish.

Fast frames are not the default frames made cheaper: MuJoCo adds each shadow-casting light in its own
pass, so without shadows the picture is darker (mean change: DMC and Meta-World ~6 grey levels, RoboDesk
with three shadow lights ~25). Keep one quality per dataset and agent.

Shadow-map size and multisampling are read when the GL context is made, so they must be set on the
model *before the first render*; :class:`Camera` does that. Headless machines: see :mod:`xfer.envs.gl`.
"""

from __future__ import annotations

import atexit
import os
import weakref
from typing import Literal

from xfer.envs.gl import use_headless_default

use_headless_default()

import mujoco  # noqa: E402  (after the MUJOCO_GL default)
import numpy as np  # noqa: E402

from xfer.errors import XferError  # noqa: E402

_OPEN: weakref.WeakSet[Camera] = weakref.WeakSet()
_HOOKED = False

Quality = Literal["fast", "default"]
QUALITIES: tuple[str, ...] = ("fast", "default")


def apply_render_quality(model: mujoco.MjModel, quality: Quality) -> None:
    """Set the model-level visual quality; call before the first render (the GL context reads it once)."""
    if quality not in QUALITIES:
        raise ValueError(f"render quality must be one of {QUALITIES}, not {quality!r}")
    if quality == "fast":
        model.vis.quality.shadowsize = 0
        model.vis.quality.offsamples = 0


def ensure_offscreen_size(model: mujoco.MjModel, width: int, height: int) -> None:
    """Grow the model's offscreen buffer when a frame is larger than it (MuJoCo refuses otherwise)."""
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, height)


class Camera:
    """Renders ``model``/``data`` from one camera into uint8 H×W×3 frames, with the chosen quality.

    ``camera`` is a camera name, an id, or a :class:`mujoco.MjvCamera` (e.g. a free camera). The GL
    context is made on the first :meth:`render`, so a Camera can be built in a parent process and used in
    a worker; :meth:`close` frees it.
    """

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, width: int, height: int,
                 camera: str | int | mujoco.MjvCamera = -1, quality: Quality = "fast") -> None:
        apply_render_quality(model, quality)
        ensure_offscreen_size(model, width, height)
        self.model, self.data = model, data
        self.width, self.height = width, height
        self.camera = camera
        self.quality = quality
        self._renderer: mujoco.Renderer | None = None

    def render(self) -> np.ndarray:
        if self._renderer is None:
            self._renderer = _make_renderer(self.model, self.width, self.height)
            _close_at_exit(self)
            if self.quality == "fast":
                self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._renderer.update_scene(self.data, camera=self.camera)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _make_renderer(model: mujoco.MjModel, width: int, height: int) -> mujoco.Renderer:
    try:
        return mujoco.Renderer(model, height, width)
    except Exception as err:
        backend = os.environ.get("MUJOCO_GL", "(unset: glfw)")
        raise XferError(
            f"MuJoCo cannot render offscreen with MUJOCO_GL={backend}: {err}",
            hint="on a machine without a display set MUJOCO_GL=egl before starting (apt packages libegl1 "
                 "libegl-mesa0 libgl1-mesa-dri), or MUJOCO_GL=osmesa (libosmesa6); xfer sets egl itself "
                 "only when nothing imported mujoco before it") from err


def _close_at_exit(camera: Camera) -> None:
    """Free the GL contexts of environments nobody closed before MuJoCo's exit hook tears EGL down. That
    hook is registered with the first GL context, so ours, registered after it, runs before it."""
    global _HOOKED
    if not _HOOKED:
        atexit.register(_close_open_cameras)
        _HOOKED = True
    _OPEN.add(camera)


def _close_open_cameras() -> None:
    for camera in list(_OPEN):
        camera.close()
