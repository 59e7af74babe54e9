"""Padded action entries (Meta-World 4-d → RoboDesk 5-d) never reach a model: the source actor's 5th entry is
exactly 0 in imagination and in acting, gets no gradient, and the world model's weights for it (which source
data never trains) cannot change an imagined rollout."""

from __future__ import annotations

import numpy as np
import torch
from xfer_plugins.coworld.agents import build_agent

from xfer.dreamer.config import DreamerConfig

from .test_stages import random_batch

SHAPES = {"image": [64, 64, 3]}


def padded_source(seed: int = 0):
    torch.manual_seed(seed)
    model = DreamerConfig.from_preset("tiny", horizon=3, kl_free=0.0, reinforce_fraction=0.5)
    return build_agent(SHAPES, 5, model, "cpu", native=4)


def source_batch(seed: int) -> dict[str, np.ndarray]:
    batch = random_batch(seed, act_dim=5)
    batch["action"][..., 4] = 0.0  # the router's replay holds zero-padded actions
    return batch


def test_source_imagination_and_acting_have_a_zero_fifth_entry() -> None:
    source = padded_source()
    _, out = source.train_world_model(source_batch(0))
    imag = source.imagine(out)
    assert imag.action.shape[-1] == 5
    assert torch.all(imag.action[..., 4] == 0.0), "the padded entry must be exactly 0 in imagination"
    assert imag.action[1:, :, :4].abs().mean() > 0.1
    obs = {"image": source_batch(1)["image"][:, 0], "is_first": np.ones(2, bool)}
    for explore in (True, False):
        action, _ = source.act(obs, None, explore)
        assert np.all(action[:, 4] == 0.0)


def test_padded_entry_gets_no_gradient_in_a_source_update() -> None:
    source = padded_source()
    source.train_step(source_batch(0))
    head = source.behavior.actor.net[-1]  # outputs [mean_0..4, std_0..4]
    assert head.bias.grad is not None
    assert torch.all(head.weight.grad[[4, 9]] == 0.0) and torch.all(head.bias.grad[[4, 9]] == 0.0)
    assert torch.all(head.bias.grad[[0, 1, 2, 3, 5, 6, 7, 8]] != 0.0)
    img_in = source.world_model.rssm.img_in  # input [stoch, action, ...]: the a5 column
    a5 = source.world_model.rssm.stoch_dim + 4
    assert torch.all(img_in.weight.grad[:, a5] == 0.0), "source data never trains the a5 weights"


def test_untrained_a5_weights_cannot_change_the_imagination() -> None:
    source = padded_source()
    _, out = source.train_world_model(source_batch(0))
    torch.manual_seed(7)
    before = source.imagine(out).feat
    with torch.no_grad():
        source.world_model.rssm.img_in.weight[:, source.world_model.rssm.stoch_dim + 4] += 5.0
    torch.manual_seed(7)
    after = source.imagine(out).feat
    assert torch.equal(before, after)
    # without the mask the same perturbation changes the rollout (the defect the mask removes)
    source.behavior.set_action_mask(None)
    torch.manual_seed(7)
    unmasked = source.imagine(out).feat
    with torch.no_grad():
        source.world_model.rssm.img_in.weight[:, source.world_model.rssm.stoch_dim + 4] -= 5.0
    torch.manual_seed(7)
    assert not torch.allclose(unmasked, source.imagine(out).feat)


def test_target_agent_masks_only_its_own_padding() -> None:
    model = DreamerConfig.from_preset("tiny", horizon=3)
    wide_target = build_agent(SHAPES, 5, model, "cpu", native=5)
    assert wide_target.behavior.action_mask is None
    narrow_target = build_agent(SHAPES, 5, model, "cpu", native=3)
    mask = narrow_target.behavior.action_mask
    assert mask is not None and mask.tolist() == [True, True, True, False, False]
