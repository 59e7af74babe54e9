"""``make_env`` for the gym suite: a registered gymnasium environment behind xfer's observation and
action conventions (see the package docstring)."""

from __future__ import annotations

from typing import Any, Literal

import gymnasium
import numpy as np
from gymnasium import spaces
from pydantic import BaseModel, ConfigDict, Field
from xfer_plugins.gym.ids import registered_spec, split_task

from xfer.envs.base import HANDLES, Obs, suite_options
from xfer.envs.settings import EnvSettings
from xfer.errors import XferError


class GymOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    obs: Literal["state", "pixels", "both"] = Field(
        "state", description="state: the flattened observation; pixels: render_mode='rgb_array' frames")
    make_kwargs: dict[str, Any] = Field(default_factory=dict,
                                        description="keyword arguments of gymnasium.make")


def agent_action_space(space: spaces.Space[Any]) -> spaces.Space[Any]:
    """The agent's action space: ``Discrete(n)`` from 0, or ``Box(-1, 1)`` (flattened) for a bounded Box."""
    if isinstance(space, spaces.Discrete):
        return spaces.Discrete(int(space.n))
    if isinstance(space, spaces.Box) and np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)):
        return spaces.Box(-1.0, 1.0, (int(np.prod(space.shape)),), np.float32)
    raise XferError(f"gym: action space {space} is not supported",
                    hint="xfer takes a Discrete or a bounded Box action space")


class GymEnv(gymnasium.Wrapper):
    """Dict observation (``state`` float32 and/or ``image`` uint8 size×size×3), a ``Discrete(n)`` action from
    0 or a ``Box(-1, 1)`` one mapped onto the environment's bounds. Seeded at construction, so the first
    ``reset()`` is reproducible; ``reset(seed=s)`` reseeds."""

    def __init__(self, env: gymnasium.Env, *, state: bool, image_size: int | None, seed: int) -> None:
        super().__init__(env)
        self.inner_obs_space, self.image_size = env.observation_space, image_size
        obs: dict[str, spaces.Space[Any]] = {}
        if state:
            size = spaces.flatdim(env.observation_space)
            obs["state"] = spaces.Box(-np.inf, np.inf, (size,), np.float32)
        if image_size is not None:
            obs["image"] = spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
        self.observation_space = spaces.Dict(obs)
        self.action_space = agent_action_space(env.action_space)
        self.discrete = isinstance(env.action_space, spaces.Discrete)
        if self.discrete:  # every action legal; the attribute exists for discrete actions only, like atari's
            self.legal_action_mask = np.ones(int(env.action_space.n), bool)
        self.metadata = {**env.metadata, HANDLES: ("time_limit",)}
        self._pending_seed: int | None = seed

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict]:
        seed, self._pending_seed = (self._pending_seed if seed is None else seed), None
        obs, info = self.env.reset(seed=seed, options=options)
        return self._observe(obs), self._info(info)

    def step(self, action: Any) -> tuple[Obs, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(self._inner_action(action))
        return self._observe(obs), float(reward), bool(terminated), bool(truncated), self._info(info)

    def _inner_action(self, action: Any) -> Any:
        inner = self.env.action_space
        if self.discrete:
            return int(inner.start) + int(np.asarray(action).reshape(()))
        action = np.clip(np.asarray(action, np.float64).reshape(inner.shape), -1.0, 1.0)
        return (inner.low + (action + 1.0) * 0.5 * (inner.high - inner.low)).astype(inner.dtype)

    def _observe(self, obs: Any) -> Obs:
        out: Obs = {}
        if "state" in self.observation_space.spaces:
            out["state"] = np.asarray(spaces.flatten(self.inner_obs_space, obs), np.float32)
        if self.image_size is not None:
            out["image"] = self._frame()
        return out

    def _frame(self) -> np.ndarray:
        frame = np.asarray(self.env.render(), np.uint8)
        if frame.shape[:2] != (self.image_size, self.image_size):
            import cv2

            frame = cv2.resize(frame, (self.image_size, self.image_size), interpolation=cv2.INTER_AREA)
        return frame

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        return {**info, "legal_actions": self.legal_action_mask} if self.discrete else info


def make_env(task: str, settings: EnvSettings, seed: int) -> GymEnv:
    options = suite_options(GymOptions, settings, "gym")
    pixels = options.obs in ("pixels", "both")
    if pixels and not settings.pixels:
        raise XferError(f"gym: env.options.obs is {options.obs!r} but env.pixels is false",
                        hint="set env.options.obs: state, or env.pixels: true")
    registered_spec(task)  # imports the module of a module:EnvId task, refuses an unknown id
    kwargs = dict(options.make_kwargs)
    if pixels:
        kwargs["render_mode"] = "rgb_array"
    if settings.time_limit is not None:
        kwargs["max_episode_steps"] = settings.time_limit  # replaces the id's own TimeLimit
    try:
        env = gymnasium.make(split_task(task)[1], **kwargs)
    except gymnasium.error.DependencyNotInstalled as err:
        raise XferError(f"gym task {task!r}: {err}", hint='pip install "xfer[gym]"') from err
    return GymEnv(env, state=options.obs != "pixels" or settings.state,
                  image_size=settings.image_size if pixels else None, seed=seed)
