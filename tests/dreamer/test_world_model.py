"""World-model mechanics: image normalisation, KL balancing and free nats, conditioning."""

from __future__ import annotations

import pytest
import torch

from xfer.dreamer import DreamerConfig, WorldModel
from xfer.nets.rssm import LatentState

IMAGE = {"image": (64, 64, 3)}


def _kl_setup(free: float) -> tuple[WorldModel, torch.Tensor, torch.Tensor]:
    wm = WorldModel(IMAGE, 2, DreamerConfig.from_preset("tiny", kl_free=free))
    post = torch.randn(6, wm.rssm.stoch_dim, requires_grad=True)
    prior = torch.randn(6, wm.rssm.stoch_dim, requires_grad=True)
    return wm, post, prior


def _state(stats: torch.Tensor) -> LatentState:
    return LatentState(torch.zeros_like(stats), torch.zeros(stats.shape[0], 1), stats)


def test_kl_balancing_gives_prior_08_and_posterior_02_of_the_gradient() -> None:
    wm, post, prior = _kl_setup(free=0.0)
    loss, value = wm.kl_loss(_state(post), _state(prior))
    loss.backward()
    balanced_post, balanced_prior = post.grad.clone(), prior.grad.clone()
    post.grad, prior.grad = None, None
    plain = wm.rssm.kl(post, prior).mean()
    plain.backward()
    assert torch.allclose(loss, plain) and torch.allclose(value, plain)
    assert torch.allclose(balanced_prior, 0.8 * prior.grad, atol=1e-6)
    assert torch.allclose(balanced_post, 0.2 * post.grad, atol=1e-6)


def test_free_nats_clamp_the_mean_kl() -> None:
    wm, post, prior = _kl_setup(free=0.0)
    kl = wm.rssm.kl(post, prior).mean().detach()
    wm.cfg = wm.cfg.model_copy(update={"kl_free": float(kl) + 1.0})
    loss, _ = wm.kl_loss(_state(post), _state(prior))
    loss.backward()
    assert torch.isclose(loss, torch.tensor(float(kl) + 1.0))
    assert post.grad.abs().max() == 0 and prior.grad.abs().max() == 0
    wm.cfg = wm.cfg.model_copy(update={"kl_free": float(kl) - 0.5})
    loss, _ = wm.kl_loss(_state(post), _state(prior))
    assert torch.isclose(loss, kl)


def test_encoder_sees_images_in_minus_half_to_half(batch) -> None:
    wm = WorldModel(IMAGE, 3, DreamerConfig.from_preset("tiny"))
    seen = []
    wm.encoder.conv.net[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    data = batch()
    data["image"][:] = 0
    data["image"][0, 0, 0, 0, 0] = 255
    wm.loss(data)
    assert seen[0].dtype == torch.float32
    assert seen[0].min() == -0.5 and seen[0].max() == 0.5


def test_float_images_are_refused(batch) -> None:
    wm = WorldModel(IMAGE, 3, DreamerConfig.from_preset("tiny"))
    data = batch()
    data["image"] = data["image"].float()
    with pytest.raises(TypeError, match="uint8"):
        wm.loss(data)


def test_conditioning_changes_encoder_rssm_and_heads(batch) -> None:
    wm = WorldModel(IMAGE, 3, DreamerConfig.from_preset("tiny"), cond_dim=2)
    labels = torch.eye(2)
    data = batch(size=1)
    embeds = [wm.encode({"image": data["image"][:, 0]}, label[None]) for label in labels]
    assert not torch.allclose(embeds[0], embeds[1])
    state = wm.rssm.initial(1, "cpu")
    action = torch.zeros(1, 3)
    deters = [wm.rssm.img_step(state, action, label[None], sample=False).deter for label in labels]
    assert not torch.allclose(deters[0], deters[1])
    feat = torch.randn(1, wm.feat_dim)
    rewards = [wm.reward(feat, label[None]) for label in labels]
    images = [wm.decoder(feat, label[None])["image"] for label in labels]
    assert not torch.allclose(rewards[0], rewards[1]) and not torch.allclose(images[0], images[1])
    data["cond"] = labels[:1]  # a [B, K] label is held over the sequence
    loss, _, out = wm.loss(data)
    assert torch.isfinite(loss) and out.cond.shape == (1, data["action"].shape[1], 2)


def test_outputs_expose_embed_states_and_features(batch) -> None:
    wm = WorldModel(IMAGE, 3, DreamerConfig.from_preset("tiny"))
    data = batch(size=2, length=5)
    _, metrics, out = wm.loss(data)
    assert out.embed.shape == (2, 5, wm.encoder.embed_dim)
    assert out.feat.shape == (2, 5, wm.feat_dim)
    assert torch.equal(out.feat, torch.cat([out.post.stoch, out.post.deter], -1))
    assert torch.equal(out.post.deter, out.prior.deter)
    assert {"wm/image_loss", "wm/reward_loss", "wm/discount_loss", "wm/kl"} <= set(metrics)


def test_state_vectors_and_continuous_latents(batch) -> None:
    shapes = {"state": (5,)}
    wm = WorldModel(shapes, 3, DreamerConfig.from_preset("tiny", classes=0, stoch=6))
    loss, metrics, out = wm.loss(batch(obs_shapes=shapes))
    assert torch.isfinite(loss) and "wm/state_loss" in metrics and out.post.stoch.shape[-1] == 6
