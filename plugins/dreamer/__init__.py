"""The ``dreamer`` method: the DreamerV2 baselines the papers compare against (cheap imports only).

- ``mode: online`` — DreamerV2 from scratch on the target task (Vid2Act's main baseline);
- ``mode: offline`` — train on ``target.dataset`` only, evaluate in the environment; with
  ``model.ensemble_size`` > 0 the imagined reward is lowered by the ensemble's disagreement (CoWorld's
  "Offline DV2");
- ``mode: finetune`` — start from another run's checkpoint (``init_from``), then train online or offline
  (CoWorld's "DV2 Finetune").
"""

from __future__ import annotations

from collections.abc import Callable

from xfer_plugins.dreamer.config import DreamerMethodConfig

from xfer.hookspecs import hookimpl
from xfer.registry import MethodSpec

SPEC = MethodSpec(
    name="dreamer", config=DreamerMethodConfig, run="xfer_plugins.dreamer.run:run",
    load_agent="xfer_plugins.dreamer.run:load_agent",
    description="DreamerV2 baseline: online from scratch, offline (DV2 + disagreement penalty), finetune")


@hookimpl
def xfer_register_methods(register: Callable[[MethodSpec], None]) -> None:
    register(SPEC)
