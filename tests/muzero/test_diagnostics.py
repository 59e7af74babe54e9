"""``python -m xfer.muzero.diagnostics``: what an EfficientZero model predicts on its replay, checked by hand
on a stub model whose value, reward and action values are known."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.diagnostics import main, model_knowledge, returns_to_go
from xfer.muzero.networks import Inference
from xfer.muzero.replay import GameHistory


class StubModel:
    """v̂(s) = the frame's grey level / 10; r̂(s, a) = 1 for action 1 else 0; v̂(s') = 0.5."""

    def eval(self) -> StubModel:
        return self

    def initial_inference(self, obs: torch.Tensor) -> Inference:
        level = obs.float().mean((1, 2, 3)) / 10
        zeros = torch.zeros(1, len(obs), 1)
        logits = torch.zeros(len(obs), 3)
        return Inference(level[:, None], (zeros, zeros), torch.zeros(len(obs)), level, logits)

    def recurrent_inference(self, latent: torch.Tensor, hidden: tuple, action: torch.Tensor) -> Inference:
        rows = len(latent)
        value = torch.full((rows,), 0.5)
        return Inference(latent, hidden, (action == 1).float(), value, torch.zeros(rows, 3))


def game(levels: list[int], actions: list[int], rewards: list[float], terminal: bool) -> GameHistory:
    steps = len(actions)
    return GameHistory(frames=np.stack([np.full((1, 16, 16), 10 * level, np.uint8) for level in levels]),
                       actions=np.array(actions), rewards=np.array(rewards, np.float32),
                       policies=np.full((steps, 3), 1 / 3, np.float32),
                       root_values=np.zeros(steps, np.float32),
                       legal_mask=np.array([True, True, False]), terminal=terminal)


def test_returns_to_go_by_hand() -> None:
    assert returns_to_go(np.array([1.0, 0.0, 2.0]), 0.5) == pytest.approx([1.0 + 0.5 * 0.5 * 2.0, 1.0, 2.0])


def test_model_knowledge_by_hand() -> None:
    cfg = EfficientZeroConfig(preset="tiny", n_actions=3, image_size=16, image_channels=1, frame_stack=1)
    g = cfg.discount
    games = [game([0, 1, 2, 3, 4], [1, 0, 1, 2], [1, 0, 1, 0], terminal=True),
             game([5, 6, 7], [1, 0], [0, 1], terminal=False)]  # a cut segment: no exact return, no value row
    out = model_knowledge(StubModel(), cfg, games, np.array([True, True, False]))
    assert (out["games"], out["positions"], out["terminal_positions"]) == (2, 6, 4)
    returns = [1 + g * g * 1, g * 1, 1, 0]  # G_t of the first game, written out
    assert out["value_corr"] == pytest.approx(np.corrcoef([0, 1, 2, 3], returns)[0, 1])
    assert out["value_pred_mean"] == pytest.approx(1.5)
    assert out["return_mean"] == pytest.approx(np.mean(returns))
    # r̂ of the taken actions [1, 0, 1, 0 | 1, 0] against the stored rewards [1, 0, 1, 0 | 0, 1]
    assert out["reward_corr"] == pytest.approx(np.corrcoef([1, 0, 1, 0, 1, 0], [1, 0, 1, 0, 0, 1])[0, 1])
    assert out["reward_rate"] == pytest.approx(3 / 6)
    assert out["reward_pred_rewarded"] == pytest.approx(2 / 3)
    assert out["reward_pred_unrewarded"] == pytest.approx(1 / 3)
    # legal actions 0 and 1 only: Q = 0 + γ·0.5 and 1 + γ·0.5 everywhere (action 2 would not widen it)
    assert out["q_spread_median"] == pytest.approx(1.0)


def test_a_run_that_is_not_there_is_one_line_and_exit_2(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["diagnostics", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
