"""The action replay model G_θ (Eq. 3–4): the loss on a known batch, z clipping, action bounds, shapes."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from xfer_plugins.vid2act.config import ReplayVAEConfig  # noqa: E402
from xfer_plugins.vid2act.replay_vae import ReplayVAE, one_hot  # noqa: E402


def fixed_vae(mu: float, log_sigma: float, out_bias: float, act_dim: int = 2) -> ReplayVAE:
    """A VAE whose encoder always outputs (μ, σ) and whose decoder always outputs tanh(out_bias)."""
    vae = ReplayVAE(3, act_dim, 2, ReplayVAEConfig(encoder_units=(4,), decoder_units=(4, 3), latent=2))
    with torch.no_grad():
        for layer, bias in ((vae.mean, mu), (vae.log_std, log_sigma), (vae.action, out_bias)):
            layer.weight.zero_()
            layer.bias.fill_(bias)
    return vae


@pytest.mark.parametrize("kl_weight", [1.0, 0.5])
def test_loss_on_a_known_batch(kl_weight: float) -> None:
    """L = mean (a − â)² + w · mean −½(1 + ln σ² − μ² − σ²), by hand: w = 1 (Eq. 4, the default) or 0.5
    (the authors' code)."""
    mu, sigma, out = 0.5, 0.25, 0.3
    vae = fixed_vae(mu, math.log(sigma), out)
    vae.cfg = vae.cfg.model_copy(update={"kl_weight": kl_weight})
    state = torch.randn(3, 3)
    action = torch.tensor([[0.0, 1.0], [-1.0, 0.5], [0.2, 0.2]])
    label = one_hot(torch.tensor([0, 1, 0]), 2)
    loss, metrics = vae.loss(state, action, label)
    recon = ((math.tanh(out) - action) ** 2).mean().item()
    kl = -0.5 * (1 + math.log(sigma**2) - mu**2 - sigma**2)
    assert metrics["replay/recon_loss"].item() == pytest.approx(recon, rel=1e-5)
    assert metrics["replay/kl_loss"].item() == pytest.approx(kl, rel=1e-5)
    assert loss.item() == pytest.approx(recon + kl_weight * kl, rel=1e-5)
    # masking out the second row removes it from the reconstruction mean
    masked, _ = vae.loss(state, action, label, mask=torch.tensor([1.0, 0.0, 1.0]))
    recon_masked = ((math.tanh(out) - action[[0, 2]]) ** 2).mean().item()
    assert masked.item() == pytest.approx(recon_masked + kl_weight * kl, rel=1e-5)


def test_kl_weight_default_is_the_papers() -> None:
    assert ReplayVAEConfig().kl_weight == 1.0


def test_replay_features_without_sampling_use_z_zero() -> None:
    """Greedy acting: z = 0, so the same input gives the same features; sampling draws a fresh z per call."""
    torch.manual_seed(0)
    vae = ReplayVAE(5, 2, 3, ReplayVAEConfig(encoder_units=(8,), decoder_units=(8, 4), latent=2))
    state, label = torch.randn(4, 5), one_hot(torch.tensor([0, 1, 2, 0]), 3)
    greedy = vae.replay_features(state, label, sample=False)
    assert torch.equal(greedy, vae.replay_features(state, label, sample=False))
    assert torch.equal(greedy, vae.decoder_hidden(state, torch.zeros(4, 2), label))
    assert not torch.equal(vae.replay_features(state, label), vae.replay_features(state, label))


def test_log_std_is_clamped() -> None:
    vae = fixed_vae(0.0, 20.0, 0.0)
    _, std = vae.encode(torch.zeros(1, 3), torch.zeros(1, 2), one_hot(torch.tensor([0]), 2))
    assert torch.allclose(std.log(), torch.tensor(15.0))
    vae = fixed_vae(0.0, -9.0, 0.0)
    _, std = vae.encode(torch.zeros(1, 3), torch.zeros(1, 2), one_hot(torch.tensor([0]), 2))
    assert torch.allclose(std.log(), torch.tensor(-4.0))


def test_sampling_clips_z() -> None:
    vae = ReplayVAE(3, 2, 2, ReplayVAEConfig(latent=8))
    z = vae.sample_z((4096,), "cpu")
    assert z.shape == (4096, 8)
    assert z.abs().max().item() <= 0.5
    assert (z.abs() == 0.5).float().mean() > 0.3  # about 62 % of N(0, 1) lies beyond ±0.5


@pytest.mark.parametrize("act_dim", [1, 4, 7])
def test_decoder_output_within_action_bounds(act_dim: int) -> None:
    torch.manual_seed(0)
    vae = ReplayVAE(5, act_dim, 3, ReplayVAEConfig(encoder_units=(8,), decoder_units=(8, 4), latent=2))
    with torch.no_grad():
        for param in vae.parameters():
            param.mul_(50.0)  # saturate on purpose
    state, label = torch.randn(2, 6, 5) * 10, one_hot(torch.randint(3, (2, 6)), 3)
    action = vae.decode(state, label)
    assert action.shape == (2, 6, act_dim)
    assert action.min() >= -1 and action.max() <= 1
    hidden = vae.replay_features(state, label)
    assert hidden.shape == (2, 6, 4) and not hidden.requires_grad


def test_label_changes_the_replayed_action() -> None:
    torch.manual_seed(0)
    vae = ReplayVAE(5, 2, 3, ReplayVAEConfig(encoder_units=(8,), decoder_units=(8, 4), latent=2))
    state, z = torch.randn(1, 5), torch.zeros(1, 2)
    actions = [vae.decode(state, one_hot(torch.tensor([k]), 3), z) for k in range(3)]
    assert not torch.allclose(actions[0], actions[1]) and not torch.allclose(actions[1], actions[2])
