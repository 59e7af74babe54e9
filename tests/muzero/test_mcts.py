"""Batched MCTS against hand-built deterministic models."""

from __future__ import annotations

import numpy as np
import torch

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.mcts import masked_softmax, run_mcts
from xfer.muzero.networks import EfficientZeroNet

A = 6


def _cfg(**kw: object) -> EfficientZeroConfig:
    return EfficientZeroConfig(preset="tiny", n_actions=A, **kw)


def _bandit(tabular_model, rewards: list[float]):
    """State 0 pays ``rewards[a]`` and moves to an absorbing zero-reward state; zero values, flat priors."""
    reward = np.array([rewards, [0.0] * A])
    return tabular_model(np.ones((2, A), int), reward, np.zeros(2), np.zeros((2, A)))


def test_finds_best_immediate_action(tabular_model) -> None:
    model = _bandit(tabular_model, [0.1, 0.3, 1.0, 0.2, 0.0, 0.5])
    res = run_mcts(model, model.root([0, 0, 0]), np.ones((3, A), bool), _cfg(), np.random.default_rng(0),
                   add_noise=False, num_simulations=50)
    assert (res.visit_counts.argmax(1) == 2).all()
    assert (res.visit_counts.sum(1) == 50).all()
    assert model.calls == 50  # one batched network call per simulation


def test_finds_delayed_reward_by_lookahead(tabular_model) -> None:
    """a0 pays 1 then nothing; a1 pays 0 but leads to a state paying 3 per step (valued at only 3)."""
    nxt = np.array([[1, 2, 1, 1, 1, 1], [1] * A, [2] * A])
    reward = np.array([[1.0, 0.0, 0, 0, 0, 0], [0.0] * A, [3.0] * A])
    model = tabular_model(nxt, reward, np.array([0.0, 0.0, 3.0]), np.zeros((3, A)))
    legal = np.zeros((2, A), bool)
    legal[:, :3] = True
    res = run_mcts(model, model.root([0, 0]), legal, _cfg(), np.random.default_rng(1), add_noise=False,
                   num_simulations=50)
    assert (res.visit_counts.argmax(1) == 1).all()
    assert (res.root_values > 1.0).all()


def test_masked_actions_never_visited_and_rows_independent(tabular_model) -> None:
    model = _bandit(tabular_model, [5.0, 0.0, 0.0, 1.0, 0.0, 2.0])
    legal = np.array([[True] * A, [False, True, True, True, False, True], [False] * 5 + [True]])
    res = run_mcts(model, model.root([0, 0, 0]), legal, _cfg(), np.random.default_rng(2), num_simulations=40)
    assert (res.visit_counts[~legal] == 0).all()
    assert (res.visit_counts.sum(1) == 40).all()
    assert res.visit_counts[2, 5] == 40
    assert np.allclose(res.root_priors[~legal], 0.0)
    assert np.allclose(res.policy().sum(1), 1.0)
    quiet = run_mcts(model, model.root([0, 0, 0]), legal, _cfg(), np.random.default_rng(2), add_noise=False,
                     num_simulations=40)
    assert list(quiet.visit_counts.argmax(1)) == [0, 5, 5]  # each tree sees its own mask


def test_root_noise_only_at_root(tabular_model) -> None:
    logits = np.array([[2.0, 1.0, 0.0, -1.0, 0.5, 0.0]])
    model = tabular_model(np.zeros((1, A), int), np.zeros((1, A)), np.zeros(1), logits)
    legal = np.ones((4, A), bool)
    legal[:, 3] = False
    cfg = _cfg()
    clean = masked_softmax(torch.tensor(logits).repeat(4, 1), torch.as_tensor(legal)).double().numpy()
    res = run_mcts(model, model.root([0] * 4), legal, cfg, np.random.default_rng(3), num_simulations=20)
    trees = res.trees
    assert not np.allclose(trees.prior[:, 0], clean)  # noise mixed into the root
    assert np.allclose(trees.prior[:, 0].sum(1), 1.0) and np.allclose(trees.prior[:, 0][~legal], 0.0)
    noise = (trees.prior[:, 0] - (1 - cfg.exploration_fraction) * clean) / cfg.exploration_fraction
    assert (noise >= -1e-9).all() and np.allclose(noise.sum(1), 1.0)
    for node in range(1, 21):  # every other node keeps the network's prior
        assert np.allclose(trees.prior[:, node], clean)
    quiet = run_mcts(model, model.root([0] * 4), legal, cfg, np.random.default_rng(3), add_noise=False,
                     num_simulations=5)
    assert np.allclose(quiet.trees.prior[:, 0], clean)


def test_value_prefix_resets_give_exact_returns(tabular_model) -> None:
    """One legal action paying 1 per step: the tree is a chain, each backup a known discounted sum.

    The model reports cumulative prefixes since the last LSTM reset; the search must reset every
    ``lstm_horizon`` depths and difference the prefixes, else the returns come out wrong.
    """
    model = tabular_model(np.zeros((1, A), int), np.ones((1, A)), np.zeros(1), np.zeros((1, A)))
    legal = np.zeros((1, A), bool)
    legal[0, 0] = True
    sims = 12
    for horizon in (1, 2, 5):
        cfg = _cfg(lstm_horizon=horizon)
        res = run_mcts(model, model.root([0]), legal, cfg, np.random.default_rng(0), add_noise=False,
                       num_simulations=sims)
        g = cfg.discount
        backups = [sum(g**i for i in range(depth)) for depth in range(1, sims + 1)]
        assert np.isclose(res.root_values[0], sum(backups) / (sims + 1)), horizon


def test_real_network_search_shapes() -> None:
    cfg = _cfg()
    net = EfficientZeroNet(cfg).eval()
    obs = torch.randint(0, 256, (5, cfg.obs_channels, cfg.image_size, cfg.image_size), dtype=torch.uint8)
    legal = np.ones((5, A), bool)
    legal[:, -1] = False
    res = run_mcts(net, net.initial_inference(obs), legal, cfg, np.random.default_rng(0))
    assert res.visit_counts.shape == (5, A) and (res.visit_counts.sum(1) == cfg.num_simulations).all()
    assert (res.visit_counts[:, -1] == 0).all() and np.isfinite(res.root_values).all()
    actions = res.sample_actions(np.random.default_rng(0))
    assert legal[np.arange(5), actions].all()
