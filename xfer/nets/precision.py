"""Mixed precision shared by the backbones: one bf16 autocast switch."""

from __future__ import annotations

import contextlib
from typing import Any

import torch


def bf16_autocast(enabled: bool, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on ``device`` (CUDA or CPU) when ``enabled``; nothing otherwise."""
    if enabled and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
