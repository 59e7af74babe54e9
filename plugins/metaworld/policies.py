"""Meta-World's scripted expert policies (``metaworld.policies``) as xfer data-collection policies."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
from metaworld.policies import ENV_POLICY_MAP
from xfer_plugins.metaworld.env import env_name

from xfer.interfaces import Obs


class ScriptedPolicy:
    """metaworld's hand-written expert for ``task``. It reads the 39-d state: ``obs["state"]`` when the
    observation has it, otherwise the environment's ``current_state()`` (agents that see pixels only).
    The action is padded with zeros when the environment pads actions (``pad_action_to``)."""

    def __init__(self, env: gymnasium.Env, task: str) -> None:
        self.env = env
        self.expert = ENV_POLICY_MAP[env_name(task)]()
        self.action_size = int(env.action_space.shape[0])

    def reset(self) -> None:
        pass

    def __call__(self, obs: Obs) -> np.ndarray:
        state = obs["state"] if "state" in obs else self.env.get_wrapper_attr("current_state")()
        with warnings.catch_warnings():  # the experts' gains often exceed [-1, 1]; clipping is intended
            warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")
            action = self.expert.get_action(np.asarray(state, np.float64))
        action = np.clip(action, -1.0, 1.0).astype(np.float32)
        return np.pad(action, (0, self.action_size - action.size))


def scripted_policy(env: gymnasium.Env, task: str, seed: int) -> ScriptedPolicy:
    """Policy factory ``(env, task, seed) -> Policy``; the experts are deterministic, ``seed`` is unused."""
    return ScriptedPolicy(env, task)
