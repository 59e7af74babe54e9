"""``make_env`` for the atari suite: ALE with EfficientZero's preprocessing, dict observation, legal actions.

Layers, inside out: ale-py's ``AtariEnv`` (full 18-action set, RGB or grayscale screen, no frame skip,
sticky actions off, 108k-frame limit) → gymnasium's ``AtariPreprocessing`` (no-op starts, frame skip with
max-pooling of the last two frames, area resize) → for training only :class:`EpisodicLife` and
:class:`SignReward` → :class:`AtariObs` (dict observation with stacked frames, legal-action mask in ``info``).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Literal

import gymnasium
import numpy as np
from ale_py import ALEInterface, LoggerMode, roms
from ale_py.env import AtariEnv
from gymnasium import spaces
from gymnasium.wrappers import AtariPreprocessing
from pydantic import BaseModel, ConfigDict, Field

from xfer.envs.base import HANDLES, suite_options
from xfer.envs.settings import EnvSettings
from xfer.errors import XferError

FULL_ACTIONS = 18


class AtariOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    train: bool = Field(False, description="episodic life and reward clipping (training, not evaluation)")
    color: Literal["rgb", "gray"] = Field(
        "rgb", description="rgb: 3 channels per frame (EfficientZero's and XTRA's default); gray: 1 channel")
    frame_stack: int = Field(4, ge=1, description="frames stacked along the channel axis, newest last")
    noop_max: int = Field(30, ge=0, description="at most this many no-ops after a reset")
    repeat_action_probability: float = Field(0.0, ge=0.0, le=1.0, description="sticky actions (0 = off)")


def rom_id(task: str) -> str:
    return task.replace("-", "_")


def legal_action_mask(task: str) -> np.ndarray:
    """The game's legal actions (its minimal action set) as a boolean mask over the 18 full-set actions."""
    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.loadROM(roms.get_rom_path(rom_id(task)))
    return _mask(ale)


def _mask(ale: ALEInterface) -> np.ndarray:
    mask = np.zeros(FULL_ACTIONS, dtype=bool)
    mask[[int(action.value) for action in ale.getMinimalActionSet()]] = True
    return mask


class EpisodicLife(gymnasium.Wrapper):
    """Training only: losing a life ends the agent's episode (``terminated``) but not the game; the next
    reset continues the game with one no-op step, and only a real game over resets the emulator."""

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        self.lives, self.game_over = 0, True

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        terminated = terminated or 0 < lives < self.lives
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        obs, info = None, {}
        if not self.game_over and seed is None:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs = None
        if obs is None:
            obs, info = self.env.reset(seed=seed, options=options)
        self.lives, self.game_over = self.env.unwrapped.ale.lives(), False
        return obs, info


class SignReward(gymnasium.RewardWrapper):
    """Training only: reward clipped to its sign (DQN, EfficientZero); the game's reward stays in
    ``info["game_reward"]``."""

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, float(np.sign(reward)), terminated, truncated, {**info, "game_reward": float(reward)}


class AtariObs(gymnasium.Wrapper):
    """Dict observation ``{"image": uint8 H×W×(frame_stack·c)}``, c = 3 (RGB) or 1 (gray) channels per frame,
    frames in time order along the channel axis, newest last (the first frame repeated after a reset), and
    ``info["legal_actions"]``. Seeded at construction, so the first ``reset()`` is reproducible."""

    def __init__(self, env: gymnasium.Env, frame_stack: int, seed: int) -> None:
        super().__init__(env)
        height, width, channels = env.observation_space.shape
        image = spaces.Box(0, 255, (height, width, frame_stack * channels), np.uint8)
        self.observation_space = spaces.Dict({"image": image})
        self.metadata = {**env.metadata, HANDLES: ("action_repeat", "time_limit")}
        self.legal_action_mask = _mask(env.unwrapped.ale)
        self.frames: deque[np.ndarray] = deque(maxlen=frame_stack)
        self._pending_seed: int | None = seed

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        # The construction seed applies to the first reset only, whether or not that reset names a seed:
        # a stale one would turn a later unseeded reset (continuing after a lost life) into a full reset.
        seed, self._pending_seed = (self._pending_seed if seed is None else seed), None
        frame, info = self.env.reset(seed=seed, options=options)
        for _ in range(self.frames.maxlen or 1):
            self.frames.append(frame)
        return self._obs(), {**info, "legal_actions": self.legal_action_mask}

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        frame, reward, terminated, truncated, info = self.env.step(int(action))
        self.frames.append(frame)
        info = {**info, "legal_actions": self.legal_action_mask}
        return self._obs(), float(reward), terminated, truncated, info

    def _obs(self) -> dict[str, np.ndarray]:
        return {"image": np.concatenate(list(self.frames), axis=-1)}


def make_env(task: str, settings: EnvSettings, seed: int) -> gymnasium.Env:
    options = suite_options(AtariOptions, settings, "atari")
    if not settings.pixels or settings.state:
        raise XferError("atari observes the screen only: it takes neither pixels: false nor state: true")
    gray = options.color == "gray"
    env: gymnasium.Env = AtariEnv(
        rom_id(task), obs_type="grayscale" if gray else "rgb", frameskip=1, full_action_space=True,
        repeat_action_probability=options.repeat_action_probability,
        max_num_frames_per_episode=settings.time_limit)
    env = AtariPreprocessing(env, noop_max=options.noop_max, frame_skip=settings.action_repeat,
                             screen_size=settings.image_size, terminal_on_life_loss=False, grayscale_obs=gray,
                             grayscale_newaxis=True, scale_obs=False)
    if options.train:
        env = SignReward(EpisodicLife(env))
    return AtariObs(env, options.frame_stack, seed)
