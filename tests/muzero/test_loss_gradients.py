"""Per-term gradient norms of the EfficientZero loss: each term reaches exactly the groups it should, and the
norms are those of the term's share of an update."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xfer.muzero.learner import Learner
from xfer.muzero.loss_gradients import loss_gradient_norms, parameter_groups
from xfer.muzero.replay import PrioritizedReplay
from xfer.muzero.targets import TargetSource, make_batch


@pytest.mark.parametrize("network", ["conv", "mlp"])
def test_each_term_reaches_its_own_groups_with_its_share_of_the_update(tiny_cfg, make_game, network) -> None:
    cfg = tiny_cfg.model_copy(update={"init_zero": False, "value_loss_coeff": 0.25, "reward_loss_coeff": 3.0,
                                      "policy_loss_coeff": 0.5, "consistency_coeff": 2.0})
    if network == "mlp":
        cfg = cfg.model_copy(update={"network": "mlp", "image_size": 1, "image_channels": 4, "frame_stack": 1,
                                     "latent_dim": 16, "mlp_hidden": 16})
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    replay = PrioritizedReplay(cfg)
    for length in (10, 14):
        game = make_game(cfg, length, rng)
        if network == "mlp":
            game.frames = rng.normal(size=(length + 1, 4)).astype(np.float32)
        replay.add(game)
    learner = Learner(cfg)
    groups = parameter_groups(learner.net)
    grouped = [id(p) for params in groups.values() for p in params]
    assert sorted(grouped) == sorted(id(p) for p in learner.net.parameters())  # each parameter, once
    batch = make_batch(replay, replay.sample(cfg.batch_size, rng, 1.0), cfg, TargetSource(learner.target_net),
                       rng)
    before = [p.detach().clone() for p in learner.net.parameters()]
    torch.manual_seed(1)  # the same augmentation of the images in both forward passes
    norms = loss_gradient_norms(learner, batch)
    assert all(torch.equal(a, b) for a, b in zip(before, learner.net.parameters(), strict=True))
    zero = {"value": {"reward", "projection"}, "policy": {"reward", "projection"},
            "reward": {"prediction", "projection"}, "consistency": {"reward", "prediction"}}
    for term, groups_reached in norms.items():
        for group, norm in groups_reached.items():
            assert (norm == 0.0) == (group in zero[term]), (term, group, norm)
    # on the reward path only the reward term acts, so its norm is that of the whole update's gradient there:
    # total / K, as Learner.step backpropagates it (a dropped coefficient or another scale would differ)
    torch.manual_seed(1)
    losses = learner.losses(batch)
    grads = torch.autograd.grad(losses.total / cfg.unroll_steps, groups["reward"], retain_graph=True)
    assert norms["reward"]["reward"] == pytest.approx(float(torch.sqrt(sum(g.pow(2).sum() for g in grads))),
                                                      rel=1e-4)
    grads = torch.autograd.grad(losses.total / cfg.unroll_steps, groups["prediction"])
    both = float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))  # only value and policy reach f
    assert norms["value"]["prediction"] + norms["policy"]["prediction"] >= both * (1 - 1e-4)
