"""DeepMind Control Suite (dm_control 1.0.28) and CoWorld's modified tasks, as the xfer suite ``dmc``.

Task names are ``domain-task`` in lower case with every ``_`` turned into ``-``: ``walker-walk``,
``ball-in-cup-catch``, ``humanoid-cmu-run``, ``lqr-lqr-2-1``. CoWorld's cross-dynamics tasks (built by
editing the MJCF when the environment is made, see :mod:`xfer_plugins.dmc.modified`) are
``walker-uphill``, ``walker-downhill``, ``walker-nofoot`` (walker-walk's task) and ``cheetah-uphill``,
``cheetah-downhill``, ``cheetah-nopaw`` (cheetah-run's task).

Defaults: 64×64 frames from camera 0 (quadruped: camera 2), action repeat 2, 1000 simulator (control)
steps per episode. ``state`` is dm_control's observation dict flattened in its own key order.
This module imports nothing heavy: the task list is static (a test compares it with dm_control's).
"""

from __future__ import annotations

from collections.abc import Callable

from xfer.envs.gl import use_headless_default
from xfer.hookspecs import hookimpl
from xfer.registry import SuiteSpec

use_headless_default()  # before anything imports mujoco (this package's env module does)

STANDARD_TASKS: tuple[str, ...] = (
    "acrobot-swingup", "acrobot-swingup-sparse", "ball-in-cup-catch", "cartpole-balance",
    "cartpole-balance-sparse", "cartpole-swingup", "cartpole-swingup-sparse", "cartpole-two-poles",
    "cartpole-three-poles", "cheetah-run", "dog-stand", "dog-walk", "dog-trot", "dog-run", "dog-fetch",
    "finger-spin", "finger-turn-easy", "finger-turn-hard", "fish-upright", "fish-swim", "hopper-stand",
    "hopper-hop", "humanoid-stand", "humanoid-walk", "humanoid-run", "humanoid-run-pure-state",
    "humanoid-cmu-stand", "humanoid-cmu-walk", "humanoid-cmu-run", "lqr-lqr-2-1", "lqr-lqr-6-2",
    "manipulator-bring-ball", "manipulator-bring-peg", "manipulator-insert-ball", "manipulator-insert-peg",
    "pendulum-swingup", "point-mass-easy", "point-mass-hard", "quadruped-walk", "quadruped-run",
    "quadruped-escape", "quadruped-fetch", "reacher-easy", "reacher-hard", "stacker-stack-2",
    "stacker-stack-4", "swimmer-swimmer6", "swimmer-swimmer15", "walker-stand", "walker-walk", "walker-run",
)
MODIFIED_TASKS: tuple[str, ...] = (
    "walker-uphill", "walker-downhill", "walker-nofoot",
    "cheetah-uphill", "cheetah-downhill", "cheetah-nopaw",
)
TASKS: tuple[str, ...] = STANDARD_TASKS + MODIFIED_TASKS

DEFAULTS: dict[str, object] = {"image_size": 64, "action_repeat": 2, "time_limit": 1000}

SPEC = SuiteSpec(
    name="dmc",
    tasks=TASKS,
    make_env="xfer_plugins.dmc.env:make_env",
    defaults=DEFAULTS,
    policies={"random": "xfer.envs.policies:random_policy"},
    extra="dmc",
    description="DeepMind Control Suite and CoWorld's modified tasks (uphill, downhill, nofoot, nopaw)",
)


@hookimpl
def xfer_register_suites(register: Callable[[SuiteSpec], None]) -> None:
    register(SPEC)
