"""Any installed gymnasium environment, by its registered id, as the xfer suite ``gym``.

Task names are gymnasium's ids: ``CartPole-v1``, ``Acrobot-v1``, ``Pendulum-v1``, ``LunarLander-v3`` (with
Box2D installed), ``HalfCheetah-v5`` (with MuJoCo). A third-party id is spelled ``module:EnvId`` as in
``gymnasium.make``: the module is imported first so that it registers its environments. An unknown id is
refused in one line with the closest registered ids.

Observations: the environment's observation flattened to ``state`` (float32; a ``Discrete`` observation
becomes a one-hot, as ``gymnasium.spaces.flatten`` does) by default; ``env.options: {obs: pixels}`` renders
``image`` instead (``render_mode="rgb_array"``, resized to ``env.image_size``, default 64) and ``obs: both``
gives both. Actions: ``Discrete(n)`` stays discrete (starting at 0, every action legal, exposed like the
atari suite's: ``legal_action_mask`` and ``info["legal_actions"]``); a bounded ``Box`` becomes ``Box(-1, 1)``
of the flattened size, mapped linearly onto the environment's bounds. Episode length is gymnasium's own
(the id's ``max_episode_steps``) unless ``env.time_limit`` sets it. Options: ``obs``, ``make_kwargs``
(keyword arguments for ``gymnasium.make``, e.g. ``{continuous: true}``).

The listed tasks are a static tuple (listing imports nothing heavy; a test compares it with gymnasium's
registry): classic control and toy text always, Box2D and MuJoCo ids where those packages are installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from xfer.envs.gl import use_headless_default
from xfer.hookspecs import hookimpl
from xfer.registry import SuiteSpec

use_headless_default()  # MuJoCo ids render headless (EGL) before anything imports mujoco

CLASSIC_CONTROL: tuple[str, ...] = (
    "CartPole-v0", "CartPole-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1", "Acrobot-v1",
)
TOY_TEXT: tuple[str, ...] = (
    "Blackjack-v1", "FrozenLake-v1", "FrozenLake8x8-v1", "CliffWalking-v1", "CliffWalkingSlippery-v1",
    "Taxi-v4",
)
BOX2D: tuple[str, ...] = (
    "LunarLander-v3", "LunarLanderContinuous-v3", "BipedalWalker-v3", "BipedalWalkerHardcore-v3",
    "CarRacing-v3",
)
MUJOCO: tuple[str, ...] = tuple(
    f"{name}-v{version}" for name in (
        "Reacher", "Pusher", "InvertedPendulum", "InvertedDoublePendulum", "HalfCheetah", "Hopper", "Swimmer",
        "Walker2d", "Ant", "Humanoid", "HumanoidStandup") for version in (4, 5))
# Families whose simulator is an optional package: listed only where it is installed.
OPTIONAL_FAMILIES: dict[str, tuple[str, ...]] = {"Box2D": BOX2D, "mujoco": MUJOCO}


def installed_tasks() -> tuple[str, ...]:
    """The listed ids: classic control, toy text, and each optional family whose package is importable."""
    tasks = CLASSIC_CONTROL + TOY_TEXT
    for package, family in OPTIONAL_FAMILIES.items():
        if importlib.util.find_spec(package) is not None:
            tasks += family
    return tasks


@dataclass(frozen=True)
class GymSuiteSpec(SuiteSpec):
    """The gym suite accepts any id gymnasium knows (after importing ``module`` for ``module:EnvId``), not
    only the listed ones."""

    def check_task(self, task: str) -> None:
        if task in self.tasks:
            return
        from xfer_plugins.gym.ids import registered_spec

        registered_spec(task)


DEFAULTS: dict[str, object] = {"image_size": 64, "action_repeat": 1}

SPEC = GymSuiteSpec(
    name="gym",
    tasks=installed_tasks(),
    make_env="xfer_plugins.gym.env:make_env",
    defaults=DEFAULTS,
    policies={"random": "xfer.envs.policies:random_policy"},
    extra="gym",
    description="any installed gymnasium environment by id (module:EnvId for third-party ones); state "
                "vectors, or rendered pixels with env.options.obs",
)


@hookimpl
def xfer_register_suites(register: Callable[[SuiteSpec], None]) -> None:
    register(SPEC)
