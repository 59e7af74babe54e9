"""Synthetic offline games and a tiny backbone for the XTRA tests (no emulator needed)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from xfer_plugins.xtra.pretrain import OfflineGame

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.loop import build_learner
from xfer.muzero.replay import GameHistory, PrioritizedReplay

A = 18


def tiny_cfg(**kw: object) -> EfficientZeroConfig:
    return EfficientZeroConfig(preset="tiny", image_channels=1, image_size=16, n_actions=A, batch_size=4,
                               num_simulations=3, min_replay_size=1, **kw)


def synthetic_game(name: str, legal_actions: list[int], seed: int, task_id: int, cfg: EfficientZeroConfig,
                   length: int = 12) -> OfflineGame:
    rng = np.random.default_rng(seed)
    legal = np.zeros(A, bool)
    legal[legal_actions] = True
    replay = PrioritizedReplay(cfg)
    for _ in range(2):
        actions = rng.choice(legal_actions, size=length)
        policies = np.zeros((length, A), np.float32)
        policies[np.arange(length), actions] = 1.0
        replay.add(GameHistory(
            frames=rng.integers(0, 256, (length + 1, 1, cfg.image_size, cfg.image_size), dtype=np.uint8),
            actions=actions, rewards=rng.choice([0.0, 1.0], size=length).astype(np.float32),
            policies=policies, root_values=np.zeros(length, np.float32), legal_mask=legal, terminal=True,
            task_id=task_id))
    return OfflineGame(name, replay, legal)


@pytest.fixture
def make_game():
    return synthetic_game


@pytest.fixture
def cfg() -> EfficientZeroConfig:
    return tiny_cfg()


@pytest.fixture
def games(cfg: EfficientZeroConfig) -> list[OfflineGame]:
    return [synthetic_game("shooter", [0, 1, 3, 4], 1, 1, cfg),
            synthetic_game("maze", [0, 2, 5, 6, 7], 2, 2, cfg)]


@pytest.fixture
def learner_factory(cfg: EfficientZeroConfig):
    def make(seed: int = 0, config: EfficientZeroConfig | None = None):
        return build_learner(config or cfg, torch.device("cpu"), seed)

    return make


@pytest.fixture
def fake_ctx() -> SimpleNamespace:
    """The part of a RunContext that the update functions use: its random stream."""
    return SimpleNamespace(rng=np.random.default_rng(0))
