"""``model.init``: PyTorch's default initialisation, or Glorot-uniform weights with zero biases (DreamerV2
code's Keras defaults) on every linear and convolution layer of the world model, actor and critics."""

from __future__ import annotations

import math

import torch
from torch import nn

from xfer.dreamer import DreamerConfig
from xfer.nets.init import LAYERS, glorot_init_


def _layers(agent) -> list[nn.Module]:
    parts = (agent.world_model, agent.behavior)
    return [m for part in parts for m in part.modules() if isinstance(m, LAYERS)]


def test_glorot_bounds_and_zero_biases(make_agent) -> None:
    agent = make_agent(cfg=DreamerConfig.from_preset("tiny", init="glorot"))
    layers = _layers(agent)
    assert any(isinstance(m, nn.ConvTranspose2d) for m in layers)
    assert any(isinstance(m, nn.Conv2d) for m in layers)
    for layer in layers:
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert layer.weight.abs().max() <= bound
        if layer.weight.numel() >= 1000:  # uniform on [-b, b]: std b / sqrt(3)
            assert abs(layer.weight.std().item() - bound / math.sqrt(3)) < 0.1 * bound
        assert layer.bias is None or not layer.bias.any()
    norms = [m for m in agent.world_model.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(bool((m.weight == 1).all() and (m.bias == 0).all()) for m in norms)
    behavior = agent.behavior
    assert all(torch.equal(a, b) for a, b in zip(behavior.critic.state_dict().values(),
                                                 behavior.slow_critic.state_dict().values(), strict=True))


def test_torch_default_is_kept(make_agent) -> None:
    agent = make_agent()
    assert DreamerConfig.from_preset("tiny").init == "torch"
    linear = next(m for m in _layers(agent) if isinstance(m, nn.Linear) and m.bias is not None)
    assert linear.bias.abs().max() > 0 and linear.weight.abs().max() <= 1 / math.sqrt(linear.in_features)


def test_glorot_init_hand_values() -> None:
    torch.manual_seed(0)
    layer = glorot_init_(nn.Sequential(nn.Linear(3, 5)))[0]
    assert layer.weight.abs().max() <= math.sqrt(6 / 8) and not layer.bias.any()
