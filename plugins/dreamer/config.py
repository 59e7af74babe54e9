"""The ``dreamer`` method's recipe section (pydantic only, so validating a recipe never imports torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from xfer.dreamer.config import DreamerConfig
from xfer.dreamer.method_config import TrainSchedule


class DreamerMethodConfig(BaseModel):
    """DreamerV2 as a baseline: from scratch online, offline from a dataset, or finetuned from a run.

    ``model`` is the backbone (a preset plus overrides, e.g. ``{preset: tiny}``); its ``ensemble_size`` > 0
    turns on the disagreement reward penalty of CoWorld's "Offline DV2" baseline. ``train`` is the schedule
    of :mod:`xfer.dreamer.loop` (environment steps for online training, ``updates`` for offline training).
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["online", "offline", "finetune"] = Field(
        "online", description="online: learn in the target env; offline: from target.dataset only; "
        "finetune: start from init_from's weights, then train as finetune_on says")
    inputs: list[Literal["image", "state"]] = Field(
        ["image"], min_length=1, description="observation keys the world model reads (state needs env.state)")
    model: DreamerConfig = Field(default_factory=DreamerConfig)
    train: TrainSchedule = Field(default_factory=TrainSchedule)
    init_from: Path | None = Field(None, description="finetune: a run directory (newest checkpoint) or a "
                                   "checkpoint file of a dreamer run")
    finetune_on: Literal["online", "offline"] = Field("online", description="finetune: how to train after "
                                                      "loading")
    strict_shapes: bool = Field(True, description="finetune: refuse a checkpoint with tensors of other "
                                "shapes (false: keep those freshly initialised and report them)")

    @model_validator(mode="after")
    def _finetune_source(self) -> DreamerMethodConfig:
        if self.mode == "finetune" and self.init_from is None:
            raise ValueError("mode 'finetune' needs init_from: a run directory or checkpoint to start from")
        if self.mode != "finetune" and self.init_from is not None:
            raise ValueError(f"init_from is only used with mode 'finetune' (mode is {self.mode!r})")
        return self

    @property
    def trains_online(self) -> bool:
        return self.mode == "online" or (self.mode == "finetune" and self.finetune_on == "online")
