"""Base class for the simulator suites: dict observation, action repeat with one render per agent step.

Rendering dominates the cost of a pixel environment, so the action repeat lives here rather than in a
generic wrapper: the simulator steps ``action_repeat`` times and the camera renders once. Environments
built on this class say so in ``metadata[HANDLES]`` and :func:`xfer.envs.wrappers.wrap_env` then skips its
own :class:`~xfer.envs.wrappers.ActionRepeat`.
"""

from __future__ import annotations

from typing import Any, TypeVar

import gymnasium
import numpy as np
from gymnasium import spaces
from pydantic import BaseModel, ConfigDict, ValidationError

from xfer.envs.settings import EnvSettings
from xfer.errors import XferError

Obs = dict[str, np.ndarray]
HANDLES = "xfer.handles"  # metadata key: the settings this environment already applies itself
OptionsT = TypeVar("OptionsT", bound=BaseModel)


class SimEnv(gymnasium.Env[Obs, np.ndarray]):
    """Continuous-control environment with observation ``{"image": uint8 H×W×3, "state": float32}``; either
    may be switched off (``settings.pixels``, ``settings.state``), not both.

    Subclasses implement the four ``_``-hooks. The environment is seeded at construction (``seed``), so
    the first ``reset()`` without a seed is reproducible; ``reset(seed=s)`` reseeds.
    ``current_state()`` returns the full state vector whether or not the observation includes it
    (scripted policies need it when the agent sees pixels only).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], HANDLES: ("action_repeat",)}
    render_mode = "rgb_array"

    def __init__(self, *, action_size: int, image_size: int, state_size: int, include_state: bool,
                 action_repeat: int, seed: int, include_image: bool = True) -> None:
        if not (include_image or include_state):
            raise XferError("an environment without pixels (pixels: false) needs the state (state: true)")
        self.action_space = spaces.Box(-1.0, 1.0, (action_size,), np.float32)
        obs_spaces: dict[str, spaces.Space[Any]] = {}
        if include_image:
            obs_spaces["image"] = spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
        if include_state:
            obs_spaces["state"] = spaces.Box(-np.inf, np.inf, (state_size,), np.float32)
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_repeat = action_repeat
        self._pending_seed: int | None = seed

    # --- what a suite implements ---------------------------------------------------------------------
    def _reset_sim(self, seed: int | None) -> dict[str, Any]:
        """Reset the simulator (reseeding first when ``seed`` is given); return the reset info."""
        raise NotImplementedError

    def _step_sim(self, action: np.ndarray) -> tuple[float, bool, dict[str, Any]]:
        """One simulator step: (reward, terminated, info)."""
        raise NotImplementedError

    def _render_image(self) -> np.ndarray:
        """The current frame, uint8 H×W×3 at the observation's size, the right way up."""
        raise NotImplementedError

    def current_state(self) -> np.ndarray:
        """The full state vector (float32) of the current simulator state."""
        raise NotImplementedError

    # --- gymnasium API -------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict]:
        super().reset(seed=seed)
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        else:
            self._pending_seed = None
        info = self._reset_sim(seed)
        return self._observe(), info

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action of shape {action.shape}, expected {self.action_space.shape}")
        total, terminated, info, success = 0.0, False, {}, False
        for _ in range(self.action_repeat):
            reward, terminated, info = self._step_sim(action)
            total += reward
            success = success or bool(info.get("success", False))
            if terminated:
                break
        if "success" in info:
            info["success"] = success
        return self._observe(), total, terminated, False, info

    def render(self) -> np.ndarray:  # type: ignore[override]
        return self._render_image()

    def _observe(self) -> Obs:
        obs = {"image": self._render_image()} if "image" in self.observation_space.spaces else {}
        if "state" in self.observation_space.spaces:
            obs["state"] = self.current_state()
        return obs


def suite_options(model: type[OptionsT], settings: EnvSettings, suite: str) -> OptionsT:
    """Validate ``settings.options`` against a suite's pydantic model (``extra="forbid"``), naming the key."""
    try:
        return model.model_validate(settings.options)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in err.errors())
        raise XferError(f"suite {suite!r}: invalid env options: {problems}",
                        hint=f"known options: {', '.join(model.model_fields) or 'none'}") from err


class NoOptions(BaseModel):
    """The options of a suite that takes none."""

    model_config = ConfigDict(extra="forbid")
