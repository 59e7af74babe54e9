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


@pytest.fixture(scope="session")
def fake_plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment variables under which subprocesses (`xfer ...`) also see the fake suite and method.

    The fake plugin is registered as a real distribution (a ``.dist-info`` with an ``xfer`` entry point)
    on PYTHONPATH, exactly how an installed third-party plugin is found.
    """
    from xfer.testing import install_plugin_distribution

    source = "from xfer.testing import FakePlugin\nplugin = FakePlugin()\n"
    return install_plugin_distribution(tmp_path_factory.mktemp("fake_site"), "xfer-fake-ep",
                                       {"xfer_fake_ep": source}, "fake = xfer_fake_ep:plugin")
