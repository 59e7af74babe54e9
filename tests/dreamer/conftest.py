"""Shared fixtures for the DreamerV2 backbone tests: tiny configs and synthetic batches."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from xfer.dreamer import DreamerAgent, DreamerConfig
from xfer.dreamer.bench import synthetic_batch

IMAGE = {"image": (64, 64, 3)}


@pytest.fixture(autouse=True)
def _single_thread_and_seed() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture
def tiny() -> DreamerConfig:
    return DreamerConfig.from_preset("tiny", horizon=4)


@pytest.fixture
def make_agent(tiny: DreamerConfig) -> Callable[..., DreamerAgent]:
    def make(seed: int = 0, act_dim: int = 3, discrete: bool = False, cfg: DreamerConfig | None = None,
             obs_shapes: dict[str, tuple[int, ...]] | None = None, **kwargs: int) -> DreamerAgent:
        torch.manual_seed(seed)
        return DreamerAgent(obs_shapes or IMAGE, act_dim, discrete, cfg or tiny, **kwargs)

    return make


@pytest.fixture
def batch() -> Callable[..., dict[str, torch.Tensor]]:
    def make(act_dim: int = 3, discrete: bool = False, size: int = 2, length: int = 6,
             obs_shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, torch.Tensor]:
        return synthetic_batch(obs_shapes or IMAGE, act_dim, discrete, size, length)

    return make
