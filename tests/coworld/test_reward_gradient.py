"""Stage B inside a real source world-model update: the source reward head's gradient is exactly
reward_scale·(η·∇L_src + (1 − η)·∇L_tg) (Eq. 5), and r̃ (Eq. 4) is the SOURCE world model's reward of its own
filtering of the target observations with the target actions."""

from __future__ import annotations

import copy

import pytest
import torch
from xfer_plugins.coworld.reward import EtaSchedule, RewardAlignment

from xfer.dreamer.agent import DreamerAgent
from xfer.dreamer.config import DreamerConfig

from .test_stages import SHAPES, random_batch

K = 0.3


def source_agent(reward_scale: float = 1.0) -> DreamerAgent:
    torch.manual_seed(0)
    cfg = DreamerConfig.from_preset("tiny", horizon=3, kl_free=0.0, grad_clip=1e9, reward_scale=reward_scale)
    return DreamerAgent(SHAPES, 3, False, cfg)


def by_hand(wm, source_batch, target_batch, seed: int):  # type: ignore[no-untyped-def]
    """L_src, L_tg of Eq. 5 and r̃ of Eq. 4, with the same latent samples as the update (same seed, same
    order: the source batch is filtered first, then the target batch)."""
    torch.manual_seed(seed)
    out = wm.observe(source_batch)
    filtered = wm.observe(target_batch)  # h̃, z̃: source world model, target observations and actions
    predicted = wm.reward(filtered.feat)
    relabelled = ((1 - K) * predicted + K * target_batch["reward"]).detach()
    l_src = 0.5 * (wm.reward(out.feat) - source_batch["reward"]).square().mean()
    l_tg = 0.5 * (predicted - relabelled).square().mean()
    return l_src, l_tg, relabelled


@pytest.mark.parametrize("reward_scale", [1.0, 2.0])
def test_source_reward_head_gradient_is_the_eta_mixture(reward_scale: float) -> None:
    source = source_agent(reward_scale)
    reference = copy.deepcopy(source.world_model)
    source_batch = source.to_tensors(random_batch(0))
    target_batch = source.to_tensors(random_batch(1))
    eta = EtaSchedule(1.0, 0.1, steps=4)
    eta.advance(1)  # η = 0.775
    source.add_world_model_term(RewardAlignment(source.world_model, K, eta, lambda: target_batch))
    torch.manual_seed(5)
    metrics, _ = source.train_world_model(source_batch)
    assert float(metrics["coworld/eta"]) == pytest.approx(0.775)
    got = [p.grad for p in source.world_model.reward_head.parameters()]

    l_src, l_tg, relabelled = by_hand(reference, source_batch, target_batch, seed=5)
    params = list(reference.reward_head.parameters())
    g_src = torch.autograd.grad(l_src, params, retain_graph=True)
    g_tg = torch.autograd.grad(l_tg, params)
    for grad, a, b in zip(got, g_src, g_tg, strict=True):
        assert grad is not None
        expected = reward_scale * (0.775 * a + 0.225 * b)
        assert torch.allclose(grad, expected, rtol=1e-4, atol=1e-7)
        assert not torch.allclose(grad, reward_scale * a, rtol=1e-3, atol=1e-6), "the target term counts"
    assert float(metrics["coworld/relabelled_reward"]) == pytest.approx(relabelled.mean().item(), rel=1e-5)
    assert float(metrics["coworld/relabel_loss"]) == pytest.approx(l_tg.item(), rel=1e-5)


def test_relabelled_reward_reads_the_target_actions_and_the_source_model() -> None:
    source, other = source_agent(), source_agent()
    with torch.no_grad():
        for p in other.world_model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    target_batch = source.to_tensors(random_batch(1))

    def relabelled(wm, batch) -> float:  # type: ignore[no-untyped-def]
        term = RewardAlignment(wm, K, EtaSchedule(0.5, 0.5, 1), lambda: batch)
        out = wm.observe(source.to_tensors(random_batch(0)))
        torch.manual_seed(3)
        return float(term(out, source.to_tensors(random_batch(0)))[1]["coworld/relabelled_reward"])

    base = relabelled(source.world_model, target_batch)
    torch.manual_seed(3)
    expected = by_hand_mean(source.world_model, target_batch)
    assert base == pytest.approx(expected, rel=1e-5)
    moved = {**target_batch, "action": -target_batch["action"]}
    assert relabelled(source.world_model, moved) != pytest.approx(base, rel=1e-4), "target actions are used"
    assert relabelled(other.world_model, target_batch) != pytest.approx(base, rel=1e-4), "the model's own"


def by_hand_mean(wm, target_batch) -> float:  # type: ignore[no-untyped-def]
    predicted = wm.reward(wm.observe(target_batch).feat)
    return float(((1 - K) * predicted + K * target_batch["reward"]).mean().detach())
