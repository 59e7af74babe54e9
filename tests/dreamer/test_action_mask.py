"""The action-mask seam of the actor (padded action entries, e.g. a 4-d domain in a 5-d agent): padded
entries are exactly 0 in imagination and acting, get no gradient, and are left out of log-prob and entropy."""

from __future__ import annotations

import pytest
import torch

from xfer.dreamer import DreamerConfig
from xfer.nets.dists import TruncatedNormal

REAL = [True, True, True, False]


def test_masked_truncated_normal_is_the_real_entries_distribution() -> None:
    loc = torch.tensor([[0.2, -0.5, 0.9, 0.4], [0.0, 0.3, -0.1, -0.8]], requires_grad=True)
    scale = torch.tensor([[0.5, 0.3, 1.0, 0.7], [0.2, 0.9, 0.4, 0.6]], requires_grad=True)
    masked = TruncatedNormal(loc, scale, mask=torch.tensor(REAL))
    real = TruncatedNormal(loc[:, :3], scale[:, :3])
    value = torch.tensor([[0.1, 0.2, -0.3, 0.0], [0.5, -0.5, 0.25, 0.0]])
    assert torch.allclose(masked.log_prob(value), real.log_prob(value[:, :3]))
    assert torch.allclose(masked.entropy(), real.entropy())
    assert not torch.allclose(TruncatedNormal(loc, scale).entropy(), real.entropy())
    sample = masked.rsample()
    assert torch.all(sample[:, 3] == 0.0) and torch.all(sample[:, :3] != 0.0)
    assert torch.all(masked.mode()[:, 3] == 0.0)
    (sample.sum() + masked.log_prob(value).sum() + masked.entropy().sum() + masked.mode().sum()).backward()
    assert loc.grad is not None and scale.grad is not None
    assert torch.all(loc.grad[:, 3] == 0.0) and torch.all(scale.grad[:, 3] == 0.0)
    assert torch.all(loc.grad[:, :3] != 0.0) and torch.all(scale.grad[:, :3] != 0.0)


def test_padded_entry_is_zero_in_imagination_and_gets_no_gradient(make_agent, batch) -> None:
    cfg = DreamerConfig.from_preset("tiny", horizon=4, reinforce_fraction=0.5)  # both actor gradients
    agent = make_agent(act_dim=4, cfg=cfg)
    agent.behavior.set_action_mask(REAL)
    _, out = agent.train_world_model(batch(act_dim=4))
    behavior, wm = agent.behavior, agent.world_model
    imag = agent.imagine(out)
    assert torch.all(imag.action[..., 3] == 0.0)
    assert torch.all(imag.action[1:, :, :3] != 0.0)
    reward = wm.imagined_reward(imag.feat, imag.action)
    continues = torch.ones(imag.feat.shape[1])
    ret = behavior.returns(imag, reward, wm.discount(imag.feat), continues)
    loss, metrics = behavior.actor_loss(imag, ret, imag.actor_out)
    # the entropy is that of the three real entries only
    mean, std = imag.actor_out[:-1].chunk(2, -1)
    real = TruncatedNormal(torch.tanh(mean[..., :3]), 2 * torch.sigmoid(std[..., :3] / 2) + cfg.actor_min_std)
    assert metrics["actor/entropy"].item() == pytest.approx(real.entropy().mean().item(), rel=1e-5)
    loss.backward()
    head = behavior.actor.net[-1]  # outputs [mean_0..3, std_0..3]
    assert head.weight.grad is not None and head.bias.grad is not None
    padded_rows = [3, 7]
    assert torch.all(head.weight.grad[padded_rows] == 0.0) and torch.all(head.bias.grad[padded_rows] == 0.0)
    assert torch.all(head.bias.grad[[0, 1, 2, 4, 5, 6]] != 0.0)


def test_acting_emits_zero_padded_entries(make_agent, batch) -> None:
    agent = make_agent(act_dim=4)
    keys_before = set(agent.state_dict()["behavior"])
    agent.behavior.set_action_mask(REAL)
    assert set(agent.state_dict()["behavior"]) == keys_before, "the mask is not a checkpoint key"
    obs = {"image": batch(act_dim=4)["image"][:, 0], "is_first": torch.ones(2)}
    for explore in (True, False):
        action, _ = agent.act(obs, None, explore)
        assert action.shape == (2, 4) and (action[:, 3] == 0.0).all() and (action[:, :3] != 0.0).all()
    metrics = agent.train_step(batch(act_dim=4))
    assert all(torch.isfinite(torch.tensor(value)) for value in metrics.values())


def test_action_mask_checks_its_input(make_agent) -> None:
    agent = make_agent(act_dim=4)
    agent.behavior.set_action_mask([True] * 4)
    assert agent.behavior.action_mask is None, "all real = no mask"
    for bad in ([True, False], [False] * 4):
        with pytest.raises(ValueError, match="4 entries"):
            agent.behavior.set_action_mask(bad)
    with pytest.raises(ValueError, match="discrete"):
        make_agent(act_dim=4, discrete=True).behavior.set_action_mask(REAL)
    agent.behavior.set_action_mask(REAL)
    agent.behavior.set_action_mask(None)
    assert agent.behavior.action_mask is None
