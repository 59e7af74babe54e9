"""Options of the ``efficientzero`` baseline: EfficientZero from scratch on Atari100k (Ye et al. 2021).

Importable without torch. The backbone section ``model`` defaults to the ``paper`` preset (the
EfficientZero network of XTRA Appendix H, Table 4 hyper-parameters); ``selfplay`` is the online protocol
shared with XTRA's Stage 2 (100k agent steps).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.loop import SelfPlaySettings


class EfficientZeroMethodConfig(BaseModel):
    """The ``efficientzero`` recipe section."""

    model_config = ConfigDict(extra="forbid")

    model: EfficientZeroConfig = Field(default_factory=lambda: EfficientZeroConfig(preset="paper"),
                                       description="backbone settings (presets: tiny, paper, paper-L)")
    selfplay: SelfPlaySettings = Field(default_factory=SelfPlaySettings)
    eval_at_start: bool = Field(False, description="also evaluate the untrained agent at step 0")
    reanalyse_workers: int = Field(
        0, ge=0, description="processes that compute value bootstraps and reanalysed policies ahead of the "
                             "learner (EZ code's reanalyse actors, xfer.muzero.batch_workers); 0: in the "
                             "learner's process, each batch sampled right before its update")
