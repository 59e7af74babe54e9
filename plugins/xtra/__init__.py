"""The ``xtra`` method: Model-Based Cross-Task Transfer (Xu et al. 2023) on the EfficientZero backbone.

Stage 1 pretrains one multi-task model offline (teachers per game, then distillation); Stage 2 finetunes it
online on the target game together with the offline games, weighted by gradient similarity. Cheap to
import: the heavy code is named by import path.
"""

from __future__ import annotations

from collections.abc import Callable

from xfer_plugins.xtra.config import XtraConfig

from xfer.hookspecs import hookimpl
from xfer.registry import MethodSpec

METHOD = MethodSpec(
    name="xtra", config=XtraConfig, run="xfer_plugins.xtra.run:run",
    load_agent="xfer_plugins.xtra.run:load_agent", extra="atari",
    description="XTRA: offline multi-task pretraining + concurrent cross-task finetuning (Xu et al. 2023)")


@hookimpl
def xfer_register_methods(register: Callable[..., None]) -> None:
    register(METHOD)
