"""The ``efficientzero`` method: EfficientZero trained online from scratch (the XTRA paper's baseline).

Cheap to import: the heavy code is named by import path and loaded when a run starts.
"""

from __future__ import annotations

from collections.abc import Callable

from xfer_plugins.efficientzero.config import EfficientZeroMethodConfig

from xfer.hookspecs import hookimpl
from xfer.registry import MethodSpec

METHOD = MethodSpec(
    name="efficientzero", config=EfficientZeroMethodConfig, run="xfer_plugins.efficientzero.run:run",
    load_agent="xfer_plugins.efficientzero.run:load_agent", extra="atari",
    description="EfficientZero from scratch on Atari100k (Ye et al. 2021), the XTRA baseline")


@hookimpl
def xfer_register_methods(register: Callable[..., None]) -> None:
    register(METHOD)
