"""Shared by the two-process tests (test_distributed*.py): constant model noise and flat parameters."""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode


class ConstantNoise(TorchFunctionMode):
    """rand_like -> 0.5, randn_like -> 0: the models become deterministic functions of their inputs."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func is torch.rand_like:
            return torch.full_like(args[0], 0.5)
        if func is torch.randn_like:
            return torch.zeros_like(args[0])
        return func(*args, **(kwargs or {}))


def params(*modules: torch.nn.Module) -> torch.Tensor:
    """Every parameter of ``modules``, detached and flattened into one vector."""
    return torch.cat([p.detach().reshape(-1) for m in modules for p in m.parameters()])
