"""The MLP variant of h, g, f for state vectors: shapes, search, one training step on float observations."""

from __future__ import annotations

import numpy as np
import torch

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.learner import Learner
from xfer.muzero.mcts import run_mcts
from xfer.muzero.networks import EfficientZeroNet
from xfer.muzero.replay import GameHistory, PrioritizedReplay
from xfer.muzero.targets import TargetSource, make_batch


def _cfg() -> EfficientZeroConfig:
    return EfficientZeroConfig(preset="tiny-mlp", state_dim=3, n_actions=2, frame_stack=2)


def test_mlp_inference_and_search_shapes() -> None:
    cfg = _cfg()
    net = EfficientZeroNet(cfg).eval()
    assert cfg.obs_channels == 6
    root = net.initial_inference(torch.randn(5, 6))
    assert root.latent.shape == (5, cfg.latent_dim) and root.policy_logits.shape == (5, 2)
    step = net.recurrent_inference(root.latent, root.reward_hidden, torch.tensor([0, 1, 0, 1, 1]))
    assert step.latent.shape == (5, cfg.latent_dim) and step.value_prefix.shape == (5,)
    result = run_mcts(net, root, np.ones((5, 2), bool), cfg, np.random.default_rng(0))
    assert (result.visit_counts.sum(1) == cfg.num_simulations).all()


def test_one_update_on_float_state_games() -> None:
    cfg = _cfg()
    rng = np.random.default_rng(0)
    replay = PrioritizedReplay(cfg)
    for _ in range(3):
        T = 9
        replay.add(GameHistory(rng.normal(size=(T + 1, 3)).astype(np.float32), rng.integers(2, size=T),
                               rng.random(T).astype(np.float32), np.full((T, 2), 0.5, np.float32),
                               np.zeros(T, np.float32), np.ones(2, bool), True))
    torch.manual_seed(0)
    learner = Learner(cfg)
    batch = make_batch(replay, replay.sample(8, rng, 1.0), cfg, TargetSource(learner.target_net), rng)
    assert batch.obs.dtype == torch.float32 and batch.obs.shape == (8, (2 + cfg.unroll_steps) * 3)
    game = replay.game(int(batch.game_ids[0]))
    t = int(batch.steps[0])
    assert torch.allclose(batch.obs[0, 3:6], torch.as_tensor(game.frames[t]))  # newest of the stacked pair
    before = [p.detach().clone() for p in learner.net.parameters()]
    for _ in range(2):  # the warm-up's first learning rate is 0
        stats = learner.update(batch, replay)
    assert all(np.isfinite(v) for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.net.parameters(), strict=True))
