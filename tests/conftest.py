"""Shared test setup: headless MuJoCo rendering, one torch thread per test process, the fake registry."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _torch_threads() -> None:
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture
def registry():
    """Installed plugins plus xfer.testing's fake suite and fake-linear method."""
    from xfer.testing import fake_registry

    return fake_registry()
