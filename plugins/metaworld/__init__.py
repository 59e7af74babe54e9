"""Meta-World (metaworld 3.1.1) as the xfer suite ``metaworld``: all 50 manipulation tasks.

Task names are metaworld's without the version suffix (``drawer-open`` is ``drawer-open-v3``). Defaults
follow the visual-RL papers (Vid2Act, CoWorld): 64×64 frames from camera ``corner4`` (metaworld 3's copy
of the papers' tweaked ``corner2``) flipped vertically as the papers' frames were, action repeat 1,
500-step episodes, goal and object positions drawn anew at every reset from the environment's own seeded
generator (same seed, same first observation). ``state`` is the 39-d goal-observable observation;
``info["success"]`` is metaworld's success flag. Policies: ``scripted`` (metaworld's expert policies) and
``random``. This module imports nothing heavy: the task list is static (a test compares it with
metaworld's).
"""

from __future__ import annotations

from collections.abc import Callable

from xfer.envs.gl import use_headless_default
from xfer.hookspecs import hookimpl
from xfer.registry import SuiteSpec

use_headless_default()  # before anything imports mujoco (this package's env module does)

TASKS: tuple[str, ...] = (
    "assembly", "basketball", "bin-picking", "box-close", "button-press-topdown", "button-press-topdown-wall",
    "button-press", "button-press-wall", "coffee-button", "coffee-pull", "coffee-push", "dial-turn",
    "disassemble", "door-close", "door-lock", "door-open", "door-unlock", "hand-insert", "drawer-close",
    "drawer-open", "faucet-open", "faucet-close", "hammer", "handle-press-side", "handle-press",
    "handle-pull-side", "handle-pull", "lever-pull", "pick-place-wall", "pick-out-of-hole", "pick-place",
    "plate-slide", "plate-slide-side", "plate-slide-back", "plate-slide-back-side", "peg-insert-side",
    "peg-unplug-side", "soccer", "stick-push", "stick-pull", "push", "push-wall", "push-back", "reach",
    "reach-wall", "shelf-place", "sweep-into", "sweep", "window-open", "window-close",
)
# The tasks Vid2Act and CoWorld use; metaworld's scripted policies solve them 90-100 % of the time.
PAPER_TASKS: tuple[str, ...] = (
    "button-press-topdown", "door-open", "drawer-close", "peg-insert-side", "pick-place", "push",
    "drawer-open", "coffee-push", "button-press", "window-open", "door-close", "window-close",
    "faucet-open", "handle-press", "plate-slide", "reach-wall",
)

DEFAULTS: dict[str, object] = {"image_size": 64, "action_repeat": 1, "time_limit": 500, "camera": "corner4"}

SPEC = SuiteSpec(
    name="metaworld",
    tasks=TASKS,
    make_env="xfer_plugins.metaworld.env:make_env",
    defaults=DEFAULTS,
    policies={"scripted": "xfer_plugins.metaworld.policies:scripted_policy",
              "random": "xfer.envs.policies:random_policy"},
    extra="metaworld",
    description="Meta-World v3 Sawyer manipulation, 50 tasks, randomised goals, scripted expert policies",
)


@hookimpl
def xfer_register_suites(register: Callable[[SuiteSpec], None]) -> None:
    register(SPEC)
