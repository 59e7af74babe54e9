"""Device choice and torch settings: CUDA when there is one, the CPU otherwise, said in one line."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from xfer.errors import XferError


def select_device(spec: str, say: Callable[[str], None] = print) -> torch.device:
    """``auto`` picks ``cuda`` when available (and says so when it falls back to the CPU)."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        say("device: auto -> cpu (no CUDA device found)")
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise XferError(f"device {spec!r} asked for, but torch sees no CUDA device",
                            hint="use --set device=cpu (or auto)")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise XferError(f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return torch.device(spec)


def configure_torch(device: torch.device, threads: int | None, deterministic: bool) -> None:
    """CPU threads, TF32 on CUDA, and PyTorch's deterministic algorithms when asked."""
    torch.set_num_threads(threads or max(1, os.cpu_count() or 1))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = not deterministic
        torch.backends.cudnn.allow_tf32 = not deterministic
        torch.backends.cudnn.benchmark = not deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=False)


def autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """bf16 autocast on CUDA when enabled; a disabled context on the CPU (fp32 there is faster and exact)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                          enabled=enabled and device.type == "cuda")
