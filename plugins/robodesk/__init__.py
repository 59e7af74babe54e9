"""RoboDesk (robodesk 1.0.0) as the xfer suite ``robodesk``: a Franka arm at a desk, 18 tasks.

Task names are robodesk's own (``open_slide``, ``push_green``, ``upright_block_off_table``, …). Dense
reward, 500-step episodes, 64×64 frames (robodesk's camera, rendered at 120×120, cropped and resized as
robodesk does), 5-d actions (end-effector x, y, z, wrist, gripper). robodesk seeds nothing itself; each
environment keeps its own generator and lends it to ``np.random`` during reset, so the same seed gives the
same first observation. ``state`` is qpos, qvel and the end-effector position; ``info["success"]`` is the
task's success test. This module imports nothing heavy (the task list is static; a test compares it).
"""

from __future__ import annotations

from collections.abc import Callable

from xfer.envs.gl import use_headless_default
from xfer.hookspecs import hookimpl
from xfer.registry import SuiteSpec

use_headless_default()  # before anything imports mujoco (this package's env module does)

TASKS: tuple[str, ...] = (
    "open_slide", "open_drawer", "push_green", "stack", "upright_block_off_table", "flat_block_in_bin",
    "flat_block_in_shelf", "lift_upright_block", "lift_ball", "push_blue", "push_red", "flat_block_off_table",
    "ball_off_table", "upright_block_in_bin", "ball_in_bin", "upright_block_in_shelf", "ball_in_shelf",
    "lift_flat_block",
)

DEFAULTS: dict[str, object] = {"image_size": 64, "action_repeat": 1, "time_limit": 500}

SPEC = SuiteSpec(
    name="robodesk",
    tasks=TASKS,
    make_env="xfer_plugins.robodesk.env:make_env",
    defaults=DEFAULTS,
    policies={"random": "xfer.envs.policies:random_policy"},
    extra="robodesk",
    description="RoboDesk: a Franka arm at a desk (drawer, slide, buttons, blocks, ball); dense reward",
)


@hookimpl
def xfer_register_suites(register: Callable[[SuiteSpec], None]) -> None:
    register(SPEC)
