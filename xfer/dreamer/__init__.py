"""The DreamerV2 backbone (Hafner et al., "Mastering Atari with Discrete World Models", ICLR 2021): world
model, actor-critic in imagination, and the agent that trains and acts with both. Vid2Act, CoWorld and the
``dreamer`` baseline build on it through the seams documented in :mod:`xfer.dreamer.agent`.

Names are imported lazily: ``from xfer.dreamer.config import DreamerConfig`` (pydantic only) stays light,
so recipe validation and ``xfer list-plugins`` never import torch; the other names import it on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AgentState": "agent", "DreamerAgent": "agent", "OpenLoopVideo": "agent",
    "ActorCritic": "behavior", "Imagination": "behavior", "Returns": "behavior", "lambda_return": "behavior",
    "PRESETS": "config", "DreamerConfig": "config", "LoadReport": "loading",
    "WorldModel": "world_model", "WorldModelOutputs": "world_model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'xfer.dreamer' has no attribute {name!r}")
    return getattr(importlib.import_module(f"xfer.dreamer.{_EXPORTS[name]}"), name)
