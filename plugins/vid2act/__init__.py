"""Vid2Act (Pan et al., "Model-Based Reinforcement Learning with Multi-Task Offline Pretraining") as the xfer
method ``vid2act``: Stage 1 pretrains a label-conditioned mixture world model and an action replay VAE on
reward-free source datasets; Stage 2 trains a DreamerV2 student on the target task with domain-selective
distillation from the frozen teacher and generative action replay. See :mod:`xfer_plugins.vid2act.run`.

This module imports only pydantic-level code, so ``xfer list-plugins`` and ``xfer validate`` stay fast.
"""

from __future__ import annotations

from collections.abc import Callable

from xfer_plugins.vid2act.config import Vid2ActConfig

from xfer.hookspecs import hookimpl
from xfer.registry import MethodSpec

SPEC = MethodSpec(
    name="vid2act",
    config=Vid2ActConfig,
    run="xfer_plugins.vid2act.run:run",
    load_agent="xfer_plugins.vid2act.run:load_agent",
    description="Vid2Act: multi-task offline pretraining + domain-selective distillation and action replay",
)


@hookimpl
def xfer_register_methods(register: Callable[[MethodSpec], None]) -> None:
    register(SPEC)
