"""Fixtures of the dreamer method's end-to-end tests (real dmc environments)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dreamer_helpers import TINY_TRAIN, write_recipe

from xfer.run.runner import start_run

pytest.importorskip("dm_control")


@pytest.fixture(scope="package")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dreamer")


@pytest.fixture(scope="package")
def online_run(workdir: Path) -> Path:
    """An uninterrupted tiny online run from images (3 episodes of 50 steps, a handful of updates)."""
    return start_run(write_recipe(workdir, "online", {"mode": "online", "train": TINY_TRAIN},
                                  eval={"every": 200, "episodes": 1, "video": True}))
