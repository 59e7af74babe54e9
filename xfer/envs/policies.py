"""The ``random`` data-collection policy every suite offers (``SuiteSpec.policies["random"]``)."""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces

from xfer.interfaces import Obs


class RandomPolicy:
    """Uniform random actions from the environment's action space, reproducible from ``seed``.

    For a discrete space with a legal-action mask (Atari's full 18-action set, see the environment's
    ``legal_action_mask`` attribute) it samples among the legal actions only.
    """

    def __init__(self, action_space: spaces.Space, seed: int, legal: np.ndarray | None = None) -> None:
        self.action_space = action_space
        self.rng = np.random.default_rng(seed)
        self.legal = None if legal is None else np.flatnonzero(legal)

    def reset(self) -> None:
        pass

    def __call__(self, obs: Obs) -> np.ndarray | int:
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            choices = self.legal if self.legal is not None else np.arange(space.n)
            return int(space.start + self.rng.choice(choices))
        if isinstance(space, spaces.Box):
            low = np.where(np.isfinite(space.low), space.low, -1.0)
            high = np.where(np.isfinite(space.high), space.high, 1.0)
            return self.rng.uniform(low, high).astype(space.dtype)
        raise TypeError(f"RandomPolicy supports Box and Discrete action spaces, not {space}")


def random_policy(env: gymnasium.Env, task: str, seed: int) -> RandomPolicy:
    """Policy factory ``(env, task, seed) -> Policy`` for any suite."""
    try:
        legal = env.get_wrapper_attr("legal_action_mask")
    except AttributeError:
        legal = None
    return RandomPolicy(env.action_space, seed, legal)
