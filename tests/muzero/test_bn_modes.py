"""Train- and eval-mode predictions of the model agree on held-out data after training (issue 13)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers_muzero import SIZE

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.learner import Learner
from xfer.muzero.replay import GameHistory, PrioritizedReplay
from xfer.muzero.support import support_to_scalar
from xfer.muzero.targets import TargetSource, make_batch


def _bandit_game(rng: np.random.Generator, steps: int = 10) -> tuple[GameHistory, np.ndarray]:
    """A random-policy episode of the cue bandit of helpers_muzero (reward 1 iff action == cue)."""
    cues, actions = rng.integers(4, size=steps + 1), rng.integers(4, size=steps)
    frames = np.stack([np.full((1, SIZE, SIZE), 40 + 60 * c, np.uint8) for c in cues])
    return GameHistory(frames, actions.astype(np.int64), (actions == cues[:steps]).astype(np.float32),
                       np.full((steps, 4), 0.25, np.float32), np.zeros(steps, np.float32), np.ones(4, bool),
                       True), cues


def _first_rewards(learner: Learner, train: bool) -> np.ndarray:
    """Predicted rewards of one model step from held-out observations, in train or eval mode."""
    rng = np.random.default_rng(123)
    cues = rng.integers(4, size=128)
    obs = torch.as_tensor(np.stack([np.full((1, SIZE, SIZE), 40 + 60 * c, np.uint8) for c in cues]))
    actions = torch.as_tensor(rng.integers(4, size=128))
    net = learner.net.train(train)
    with torch.no_grad():
        latent = net.represent(obs)
        _, _, prefix = net.dynamics(latent, net.initial_hidden(128), actions)
    return support_to_scalar(prefix).numpy()


def _trained(stats: str) -> Learner:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = EfficientZeroConfig(preset="tiny", image_size=SIZE, image_channels=1, frame_stack=1, n_actions=4,
                              batch_size=32, optimizer="adam", lr=0.003, action_encoding="one_hot",
                              reanalyse_policy_ratio=0.0, model_bn_stats=stats)
    learner, replay = Learner(cfg), PrioritizedReplay(cfg)
    for _ in range(40):
        replay.add(_bandit_game(rng)[0])
    for _ in range(150):
        positions = replay.sample(cfg.batch_size, rng, replay.beta(learner.train_step))
        learner.update(make_batch(replay, positions, cfg, TargetSource(learner.target_net), rng), replay)
    return learner


def test_train_and_eval_mode_rewards_agree_on_held_out_data_after_training() -> None:
    learner = _trained("first")
    train, held = _first_rewards(learner, True), _first_rewards(learner, False)
    assert np.abs(train - held).mean() < 0.05, np.abs(train - held).mean()
    assert np.ptp(held) > 0.01  # the model is not a constant, so agreement is not trivial


def _stats(net: torch.nn.Module) -> list[torch.Tensor]:
    return [b.clone() for name, b in net.named_buffers() if "running" in name]


@pytest.mark.parametrize("stats", ["first", "all"])
def test_first_step_statistics_ignore_later_unroll_steps(stats: str, make_game) -> None:
    """With ``first`` the running statistics of g and f after a 5-step unroll equal those of a 1-step one."""
    cfg = EfficientZeroConfig(preset="tiny", n_actions=4, augment_shift=0, augment_intensity=0.0,
                              model_bn_stats=stats)
    rng = np.random.default_rng(0)
    replay = PrioritizedReplay(cfg)
    replay.add(make_game(cfg, 12, rng))
    batch = make_batch(replay, replay.sample(8, rng, 1.0), cfg,
                       TargetSource(Learner(cfg).target_net, policy_mode="stored"), rng)
    torch.manual_seed(0)
    five = Learner(cfg)
    one = Learner(cfg.model_copy(update={"unroll_steps": 1, "lstm_horizon": 1}),
                  net=copy.deepcopy(five.net))
    five.losses(batch)
    one.losses(batch)
    same = [torch.allclose(a, b) for part in ("dynamics_net", "prediction")
            for a, b in zip(_stats(getattr(five.net, part)), _stats(getattr(one.net, part)), strict=True)]
    assert all(same) == (stats == "first")
    assert five.net.dynamics_net.bn.momentum == cfg.bn_momentum  # restored after the unroll


@pytest.mark.parametrize("stats", ["search", "first"])
def test_search_statistics_train_later_unroll_steps_as_search_computes_them(stats: str, make_game) -> None:
    """With ``search`` every unroll step after the first is normalised by the running statistics, so the
    training-mode value-prefix logits at depth k >= 1 are exactly what eval mode (search) computes from the
    same inputs; with per-step batch statistics (``first``, ``all``) they are not: each depth's feature
    means (how deep, how many rewards the prefix holds) are normalised away."""
    cfg = EfficientZeroConfig(preset="tiny", n_actions=4, augment_shift=0, augment_intensity=0.0,
                              model_bn_stats=stats, init_zero=False)  # zero heads would output 0 either way
    rng = np.random.default_rng(0)
    replay = PrioritizedReplay(cfg)
    replay.add(make_game(cfg, 12, rng))
    torch.manual_seed(0)
    learner = Learner(cfg)
    batch = make_batch(replay, replay.sample(8, rng, 1.0), cfg,
                       TargetSource(learner.target_net, policy_mode="stored"), rng)
    calls: list[tuple[tuple[torch.Tensor, ...], torch.Tensor]] = []

    def record(module: torch.nn.Module, inputs: tuple, output: tuple) -> None:
        latent, plane, (h, c) = inputs
        calls.append(((latent.detach(), plane.detach(), h.detach(), c.detach()), output[2].detach()))

    handle = learner.net.dynamics_net.register_forward_hook(record)
    learner.losses(batch)
    handle.remove()
    assert len(calls) == cfg.unroll_steps
    learner.net.eval()
    with torch.no_grad():
        same = [torch.allclose(learner.net.dynamics_net(latent, plane, (h, c))[2], logits, atol=1e-5)
                for (latent, plane, h, c), logits in calls[1:]]
    assert all(same) == (stats == "search"), same
    learner.losses(batch)  # restores batch statistics for the next update's first step
    assert learner.net.dynamics_net.bn.training and learner.net.prediction.value_conv[1].training
