"""Fixtures for the EfficientZero backbone: a hand-built tabular model for MCTS and synthetic games."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.networks import Inference, LstmState
from xfer.muzero.replay import GameHistory


class TabularModel:
    """A deterministic MDP posing as a MuZero model.

    The latent is the state id; the LSTM state carries the value prefix accumulated since the last reset,
    so a search that mishandles prefix resets reads wrong rewards.
    """

    def __init__(self, next_state: np.ndarray, reward: np.ndarray, value: np.ndarray,
                 logits: np.ndarray) -> None:
        self.next_state = torch.as_tensor(next_state, dtype=torch.long)
        self.reward = torch.as_tensor(reward, dtype=torch.float32)
        self.value = torch.as_tensor(value, dtype=torch.float32)
        self.logits = torch.as_tensor(logits, dtype=torch.float32)
        self.calls = 0

    def root(self, states: list[int]) -> Inference:
        s = torch.as_tensor(states, dtype=torch.long)
        zeros = torch.zeros(1, len(states), 1)
        return Inference(s.float()[:, None], (zeros, zeros.clone()), torch.zeros(len(states)),
                         self.value[s], self.logits[s])

    def recurrent_inference(self, latent: torch.Tensor, hidden: LstmState, action: torch.Tensor) -> Inference:
        self.calls += 1
        s = latent[:, 0].long()
        nxt = self.next_state[s, action]
        prefix = hidden[0][0, :, 0] + self.reward[s, action]
        new_hidden = (prefix[None, :, None], prefix[None, :, None].clone())
        return Inference(nxt.float()[:, None], new_hidden, prefix, self.value[nxt], self.logits[nxt])


@pytest.fixture
def tabular_model() -> type[TabularModel]:
    return TabularModel


@pytest.fixture
def tiny_cfg() -> EfficientZeroConfig:
    return EfficientZeroConfig(preset="tiny", n_actions=6)


def _make_game(cfg: EfficientZeroConfig, length: int, rng: np.random.Generator, terminal: bool = True,
               legal: np.ndarray | None = None, task_id: int = 0) -> GameHistory:
    legal = np.ones(cfg.n_actions, dtype=bool) if legal is None else legal
    policies = rng.random((length, cfg.n_actions)).astype(np.float32) * legal
    return GameHistory(
        frames=rng.integers(0, 256, (length + 1, cfg.image_channels, cfg.image_size, cfg.image_size),
                            dtype=np.uint8),
        actions=rng.choice(np.flatnonzero(legal), size=length),
        rewards=rng.choice([-1.0, 0.0, 1.0], size=length).astype(np.float32),
        policies=policies / policies.sum(1, keepdims=True),
        root_values=rng.normal(size=length).astype(np.float32),
        legal_mask=legal, terminal=terminal, task_id=task_id)


@pytest.fixture
def make_game() -> Callable[..., GameHistory]:
    return _make_game
