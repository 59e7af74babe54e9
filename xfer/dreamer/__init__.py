"""The DreamerV2 backbone (Hafner et al., "Mastering Atari with Discrete World Models", ICLR 2021): world model,
actor-critic in imagination, and the agent that trains and acts with both. Vid2Act, CoWorld and the
``dreamer`` baseline build on it through the seams documented in :mod:`xfer.dreamer.agent`.

Importing this package imports torch; keep it out of import paths that must stay light (CLI startup).
"""

from xfer.dreamer.agent import AgentState, DreamerAgent, OpenLoopVideo
from xfer.dreamer.behavior import ActorCritic, Imagination, Returns, lambda_return
from xfer.dreamer.config import PRESETS, DreamerConfig
from xfer.dreamer.loading import LoadReport
from xfer.dreamer.world_model import WorldModel, WorldModelOutputs

__all__ = [
    "PRESETS", "ActorCritic", "AgentState", "DreamerAgent", "DreamerConfig", "Imagination", "LoadReport",
    "OpenLoopVideo", "Returns", "WorldModel", "WorldModelOutputs", "lambda_return",
]
