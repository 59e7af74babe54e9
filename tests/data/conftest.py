"""Fixtures of the data-layer tests: synthetic episodes and small datasets written in xfer's format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xfer.data.dataset import finalize_dataset
from xfer.data.episode import Episode, write_episode


def synthetic_episode(rows: int, seed: int = 0, image: tuple[int, int, int] = (8, 8, 3), action: int = 2,
                      state: int | None = 3, discrete: bool = False, episode_id: int = 0) -> Episode:
    """An episode whose ``state`` row t is ``[episode_id, t, noise...]``, so a sampled row says where it came
    from; rewards are t / 10; success from the row after the middle."""
    rng = np.random.default_rng(seed)
    if discrete:
        actions = np.eye(action, dtype=np.float32)[rng.integers(action, size=rows)]
    else:
        actions = rng.uniform(-1, 1, (rows, action)).astype(np.float32)
    actions[0] = 0
    episode: Episode = {
        "image": rng.integers(0, 256, (rows, *image), dtype=np.uint8),
        "action": actions,
        "reward": (np.arange(rows) / 10).astype(np.float32),
        "is_first": np.arange(rows) == 0,
        "is_last": np.arange(rows) == rows - 1,
        "is_terminal": np.zeros(rows, bool),
        "success": np.arange(rows) > rows // 2,
    }
    episode["reward"][0] = 0
    if state is not None:
        values = rng.normal(size=(rows, state)).astype(np.float32)
        values[:, 0] = episode_id
        values[:, 1] = np.arange(rows)
        episode["state"] = values
    return episode


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[..., Path]:
    """``make_dataset(lengths, name=..., first_id=..., **episode_kwargs)``: a complete dataset of synthetic
    episodes; episode ``i`` has ``state[:, 0] == first_id + i``."""

    def make(lengths: list[int], name: str = "ds", suite: str = "fake", task: str = "reach",
             first_id: int = 0, **kwargs: Any) -> Path:
        path = tmp_path / name
        for index, length in enumerate(lengths):
            write_episode(path, index, synthetic_episode(length + 1, seed=first_id + index,
                                                         episode_id=first_id + index, **kwargs))
        finalize_dataset(path, suite=suite, task=task, policy="random", seed=0,
                         discrete=kwargs.get("discrete", False), success_defined=True, source="test")
        return path

    return make


@pytest.fixture
def episode() -> Callable[..., Episode]:
    """``episode(rows, seed=..., ...)``: a synthetic episode (see :func:`synthetic_episode`)."""
    return synthetic_episode
