"""Headless OpenGL default for MuJoCo, cheap enough to call from a plugin's ``__init__``.

MuJoCo and dm_control pick their GL backend from ``MUJOCO_GL`` when they are first imported. On Linux
without a display, xfer defaults it to ``egl`` (Mesa: Debian packages ``libegl1 libegl-mesa0
libgl1-mesa-dri``); a value the user set always wins (``osmesa`` needs ``libosmesa6``, ``glfw`` a display).
"""

from __future__ import annotations

import os
import sys


def use_headless_default() -> None:
    """Set ``MUJOCO_GL=egl`` unless it is set or a display is available. Call before importing mujoco."""
    has_display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not has_display:
        os.environ.setdefault("MUJOCO_GL", "egl")
