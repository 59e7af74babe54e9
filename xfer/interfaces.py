"""The small contracts between core, methods and suites.

Suites make gymnasium environments whose observation is a dict with ``image`` (uint8 H×W×C) and, when the
recipe asks, ``state`` (float32 vector); continuous actions are ``Box(-1, 1)``, Atari's are ``Discrete``;
``info["success"]`` is set where the suite defines success. Methods consume environments and datasets and
produce agents. These protocols are what core code relies on; nothing here imports torch.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

Obs = dict[str, np.ndarray]


@runtime_checkable
class Policy(Protocol):
    """A data-collection or evaluation policy for a single environment."""

    def reset(self) -> None:
        """Forget any per-episode state (called after every environment reset)."""

    def __call__(self, obs: Obs) -> np.ndarray | int:
        """Return the action for this observation."""


@runtime_checkable
class Agent(Protocol):
    """A trained agent that acts in a batch of environments (used by ``xfer eval`` and collection)."""

    def act(self, obs: Obs, state: Any, explore: bool) -> tuple[np.ndarray, Any]:
        """Batched observation (leading axis = environments) to batched action and the next recurrent state.
        ``state`` is ``None`` at the start; ``obs['is_first']`` marks environments that were just reset."""


@runtime_checkable
class WorldModel(Protocol):
    """A learned model of an environment (DreamerV2's RSSM, EfficientZero's dynamics)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...
