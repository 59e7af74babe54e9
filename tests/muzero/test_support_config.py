"""Support transform round trips and the config presets."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.support import h_inverse, h_transform, scalar_to_support, support_to_scalar


def test_h_transform_inverts_exactly() -> None:
    x = torch.linspace(-5000, 5000, 2001, dtype=torch.float64)
    assert torch.allclose(h_inverse(h_transform(x)), x, rtol=1e-9, atol=1e-7)


@pytest.mark.parametrize("support_size", [300, 30])
def test_scalar_support_scalar_round_trip(support_size: int) -> None:
    x = torch.tensor([[-250.0, -3.7, -1.0, 0.0, 0.25], [1.0, 2.5, 7.3, 83.0, 299.0]])
    if support_size == 30:
        x = x.clamp(-200, 200)  # h(200) ~ 13.4 fits the tiny support
    probs = scalar_to_support(x, support_size)
    assert probs.shape == (2, 5, 2 * support_size + 1)
    assert torch.allclose(probs.sum(-1), torch.ones(2, 5))
    assert ((probs > 0).sum(-1) <= 2).all()  # two-hot
    back = support_to_scalar(torch.log(probs + 1e-30))
    assert torch.allclose(back, x, rtol=1e-3, atol=1e-3)


def test_presets_expand_and_fields_override() -> None:
    paper, large = EfficientZeroConfig(), EfficientZeroConfig(preset="paper-L")
    assert (paper.repr_blocks, large.repr_blocks) == (1, 4)
    assert paper.latent_size == 6 and paper.support_bins == 601 and paper.obs_channels == 12
    assert (paper.value_loss_coeff, paper.policy_loss_coeff, paper.reward_loss_coeff,
            paper.consistency_coeff) == (0.25, 1.0, 1.0, 2.0)
    tiny = EfficientZeroConfig.model_validate({"preset": "tiny", "channels": 12})
    assert tiny.channels == 12 and tiny.image_size == 32 and tiny.num_simulations == 8


def test_config_rejects_unknown_keys_and_presets() -> None:
    with pytest.raises(ValidationError, match="channel"):
        EfficientZeroConfig(channel=3)
    with pytest.raises(ValidationError, match="tiny"):
        EfficientZeroConfig(preset="small")
    with pytest.raises(ValidationError, match="lstm_horizon"):
        EfficientZeroConfig(lstm_horizon=6)
