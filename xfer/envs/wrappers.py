"""The wrappers every suite shares, and :func:`wrap_env`, which applies them in one fixed order.

Order, inside out: suite environment → :class:`ActionRepeat` (unless the suite repeats itself, see
``metadata[HANDLES]``) → :class:`ImageObs` → ``gymnasium.wrappers.TimeLimit`` (``time_limit`` counts
simulator steps, so the agent gets ⌈time_limit / action_repeat⌉ steps) → :class:`ObsFlags` →
:class:`PadAction` (outermost, so the agent sees the padded action space).

Observation convention (Dreamer's): a dict with ``image`` (uint8 H×W×C), optional ``state`` (float32) and
three booleans, ``is_first`` (the observation a reset returned), ``is_last`` (the episode ended here:
terminated or truncated) and ``is_terminal`` (ended by the task, not by a time limit: bootstrap with zero).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from xfer.envs.base import HANDLES, Obs
from xfer.envs.settings import EnvSettings
from xfer.errors import XferError

FLAGS = ("is_first", "is_last", "is_terminal")


class ActionRepeat(gymnasium.Wrapper):
    """Repeat each action ``repeat`` times, summing rewards; stop early when the episode ends."""

    def __init__(self, env: gymnasium.Env, repeat: int) -> None:
        super().__init__(env)
        self.repeat = repeat

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


class ImageObs(gymnasium.ObservationWrapper):
    """Make ``obs["image"]`` uint8 H×W×C at ``size``×``size``, resizing (area interpolation) when needed."""

    def __init__(self, env: gymnasium.Env, size: int) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Dict) or "image" not in space.spaces:
            raise XferError(f"{env} must have a dict observation with an 'image' entry, not {space}")
        channels = space["image"].shape[-1] if len(space["image"].shape) == 3 else 1
        self.size, self.channels = size, channels
        self.observation_space = spaces.Dict(
            {**space.spaces, "image": spaces.Box(0, 255, (size, size, channels), np.uint8)})

    def observation(self, obs: Obs) -> Obs:
        image = np.asarray(obs["image"])
        if image.dtype != np.uint8:
            image = np.clip(image, 0, 255).astype(np.uint8)
        if image.shape[:2] != (self.size, self.size):
            import cv2

            image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        if image.ndim == 2:
            image = image[:, :, None]
        return {**obs, "image": image}


class ObsFlags(gymnasium.Wrapper):
    """Add the booleans ``is_first``, ``is_last`` and ``is_terminal`` to the dict observation."""

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        flag = spaces.Box(0, 1, (), bool)
        self.observation_space = spaces.Dict({**env.observation_space.spaces, **{k: flag for k in FLAGS}})

    def reset(self, **kwargs: Any) -> tuple[Obs, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self._flag(obs, first=True, last=False, terminal=False), info

    def step(self, action: Any) -> tuple[Obs, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        obs = self._flag(obs, first=False, last=terminated or truncated, terminal=terminated)
        return obs, reward, terminated, truncated, info

    @staticmethod
    def _flag(obs: Obs, *, first: bool, last: bool, terminal: bool) -> Obs:
        flags = {"is_first": first, "is_last": last, "is_terminal": terminal}
        return {**obs, **{key: np.array(value, dtype=bool) for key, value in flags.items()}}


class PadAction(gymnasium.ActionWrapper):
    """Accept actions of a larger size ``size`` and pass the first ``n`` entries on; the rest are ignored.

    CoWorld transfers Meta-World (4-d) to RoboDesk (5-d): padding the source's actions with zeros to the
    target's size gives both agents the same action head. A padded entry has no effect on the environment.
    """

    def __init__(self, env: gymnasium.Env, size: int) -> None:
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise XferError(f"pad_action_to needs a 1-d continuous action space, not {space}")
        self.inner_size = space.shape[0]
        if size < self.inner_size:
            raise XferError(f"pad_action_to={size} is smaller than the environment's action size "
                            f"{self.inner_size}")
        low = np.concatenate([space.low, -np.ones(size - self.inner_size, space.dtype)])
        high = np.concatenate([space.high, np.ones(size - self.inner_size, space.dtype)])
        self.action_space = spaces.Box(low, high, (size,), space.dtype)

    def action(self, action: np.ndarray) -> np.ndarray:
        action = np.asarray(action, dtype=self.action_space.dtype)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action of shape {action.shape}, expected {self.action_space.shape}")
        return action[: self.inner_size]


def agent_steps(time_limit: int, action_repeat: int) -> int:
    """Agent steps in an episode of ``time_limit`` simulator steps."""
    return math.ceil(time_limit / action_repeat)


def wrap_env(env: gymnasium.Env, settings: EnvSettings) -> gymnasium.Env:
    """Apply the common wrappers for resolved ``settings`` (see the module docstring for the order)."""
    handles = set(env.metadata.get(HANDLES, ()))
    repeat = settings.action_repeat or 1
    if repeat > 1 and "action_repeat" not in handles:
        env = ActionRepeat(env, repeat)
    if settings.image_size is not None and "image" in env.observation_space.spaces:
        env = ImageObs(env, settings.image_size)
    if settings.time_limit is not None and "time_limit" not in handles:
        env = gymnasium.wrappers.TimeLimit(env, agent_steps(settings.time_limit, repeat))
    env = ObsFlags(env)
    if settings.pad_action_to is not None:
        env = PadAction(env, settings.pad_action_to)
    return env
