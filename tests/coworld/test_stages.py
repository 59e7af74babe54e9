"""Mechanism tests of CoWorld's three stages: KL direction and gradient routing (Eq. 3), the η schedule and
reward relabelling (Eq. 4-5), and the min-max value constraint (Eq. 6)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from xfer_plugins.coworld.alignment import StateAlignment, softmax_kl
from xfer_plugins.coworld.reward import EtaSchedule, RewardAlignment, relabel_reward
from xfer_plugins.coworld.value import ValueConstraint, value_constraint

from xfer.dreamer.agent import DreamerAgent
from xfer.dreamer.config import DreamerConfig

SHAPES = {"image": (64, 64, 3)}


def tiny_agent(seed: int, act_dim: int = 3) -> DreamerAgent:
    torch.manual_seed(seed)
    cfg = DreamerConfig.from_preset("tiny", horizon=3, kl_free=0.0)
    return DreamerAgent(SHAPES, act_dim, False, cfg)


def random_batch(seed: int, b: int = 2, length: int = 4, act_dim: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    is_first = np.zeros((b, length), bool)
    is_first[:, 0] = True
    return {"image": rng.integers(0, 256, (b, length, 64, 64, 3), dtype=np.uint8),
            "action": rng.uniform(-1, 1, (b, length, act_dim)).astype(np.float32),
            "reward": rng.normal(size=(b, length)).astype(np.float32),
            "is_first": is_first, "is_terminal": np.zeros((b, length), bool)}


# -- Stage A ------------------------------------------------------------------------------------------
def test_kl_direction_is_source_to_target() -> None:
    src, tgt = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.0, 1.0, 0.5]])
    p, q = F.softmax(src, -1), F.softmax(tgt, -1)
    expected = (p * (p.log() - q.log())).sum(-1)  # KL[softmax(e_src) ‖ softmax(e_tg)]
    reverse = (q * (q.log() - p.log())).sum(-1)
    got = softmax_kl(src, tgt)
    assert torch.allclose(got, expected)
    assert not torch.allclose(got, reverse, atol=1e-3)
    assert torch.allclose(got, F.kl_div(F.log_softmax(tgt, -1), p, reduction="none").sum(-1))
    assert softmax_kl(src, src).abs().item() < 1e-6


def test_state_alignment_trains_only_the_target_encoder() -> None:
    target, source = tiny_agent(0), tiny_agent(1)
    term = StateAlignment([source.world_model], scale=1.0)
    batch = target.to_tensors(random_batch(0))
    out = target.world_model.observe(batch)
    loss, metrics = term(out, batch)
    assert loss.item() > 0 and metrics["coworld/state_kl"].item() == pytest.approx(loss.item())
    loss.backward()
    encoder_grads = [p.grad for p in target.world_model.encoder.parameters()]
    assert all(g is not None for g in encoder_grads) and any(g.abs().sum() > 0 for g in encoder_grads)
    assert all(p.grad is None for p in source.world_model.parameters()), "the source must get no gradient"
    for module in (target.world_model.decoder, target.world_model.rssm, target.world_model.reward_head):
        assert all(p.grad is None for p in module.parameters())


def test_state_alignment_scale_and_switch() -> None:
    target, source = tiny_agent(0), tiny_agent(1)
    batch = target.to_tensors(random_batch(0))
    out = target.world_model.observe(batch)
    one, _ = StateAlignment([source.world_model], scale=1.0)(out, batch)
    term = StateAlignment([source.world_model], scale=1.5)
    assert term(out, batch)[0].item() == pytest.approx(1.5 * one.item(), rel=1e-5)
    term.enabled = False
    assert term(out, batch)[0].item() == 0.0


def test_state_alignment_reduces_the_kl_inside_a_training_step() -> None:
    target, source = tiny_agent(0), tiny_agent(1)
    term = StateAlignment([source.world_model], scale=100.0)
    target.add_world_model_term(term)
    batch = random_batch(0)
    tensors = target.to_tensors(batch)
    before = term.per_source_kl(target.world_model.observe(tensors), tensors)
    source_before = copy.deepcopy(source.world_model.state_dict())
    for _ in range(5):
        target.train_world_model(batch)
    after = term.per_source_kl(target.world_model.observe(tensors), tensors)
    assert after.item() < before.item()
    for key, value in source.world_model.state_dict().items():
        assert torch.equal(value, source_before[key])


# -- Stage B ------------------------------------------------------------------------------------------
def test_eta_moves_and_reaches_its_floor() -> None:
    eta = EtaSchedule(start=1.0, floor=0.1, steps=10)
    values = []
    for _ in range(15):
        values.append(eta.value)
        eta.advance()
    assert values[0] == 1.0
    assert values[1] < 1.0, "η must not stay at 1 (the authors' frozen counter)"
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert values[5] == pytest.approx(0.55)
    assert values[10] == pytest.approx(0.1) and values[14] == pytest.approx(0.1)
    cosine = EtaSchedule(1.0, 0.1, 10, "cosine")
    cosine.advance(10)
    assert cosine.value == pytest.approx(0.1)
    restored = EtaSchedule(1.0, 0.1, 10)
    restored.load_state_dict(eta.state_dict())
    assert restored.value == eta.value


def test_relabelled_reward_mixes_with_k() -> None:
    got = relabel_reward(torch.tensor([2.0, -1.0]), torch.tensor([10.0, 1.0]), k=0.3)
    assert torch.allclose(got, torch.tensor([0.7 * 2.0 + 0.3 * 10.0, 0.7 * -1.0 + 0.3 * 1.0]))
    assert not got.requires_grad


class FakeWorldModel(torch.nn.Module):
    """feat = the batch's 'x'; reward = w·feat, so every loss can be computed by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(2.0))
        self.cfg = SimpleNamespace(reward_scale=1.0)

    def observe(self, batch: dict[str, torch.Tensor]) -> SimpleNamespace:
        return SimpleNamespace(feat=batch["x"], cond=None)

    def reward(self, feat: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.w * feat


def test_reward_alignment_loss_is_eq5_by_hand() -> None:
    wm = FakeWorldModel()
    target = {"x": torch.tensor([1.0, 3.0]), "reward": torch.tensor([5.0, 0.0])}
    eta = EtaSchedule(1.0, 0.1, steps=4)
    eta.advance(2)  # η = 0.55
    term = RewardAlignment(wm, k=0.3, eta=eta, sample_target=lambda: target)  # type: ignore[arg-type]
    source_out = SimpleNamespace(feat=torch.tensor([0.5]), cond=None)
    source_batch = {"reward": torch.tensor([2.0])}
    loss, metrics = term(source_out, source_batch)  # type: ignore[arg-type]
    pred_t = np.array([2.0, 6.0])
    relabelled = 0.7 * pred_t + 0.3 * np.array([5.0, 0.0])  # Eq. 4 by hand: [2.9, 4.2]
    l_tg = np.mean(0.5 * (pred_t - relabelled) ** 2)
    l_src = 0.5 * (1.0 - 2.0) ** 2
    # the base loss holds 1·L_src; the term turns it into η·L_src + (1 − η)·L_tg
    assert loss.item() == pytest.approx((0.55 - 1) * l_src + (1 - 0.55) * l_tg, rel=1e-5)
    assert metrics["coworld/eta"].item() == pytest.approx(0.55)
    assert metrics["coworld/relabelled_reward"].item() == pytest.approx(relabelled.mean(), rel=1e-5)
    assert eta.count == 3, "every Stage B update advances η"


def test_reward_alignment_advances_eta_in_source_updates() -> None:
    source = tiny_agent(0)
    target_batch = source.to_tensors(random_batch(5))
    eta = EtaSchedule(1.0, 0.1, steps=3)
    term = RewardAlignment(source.world_model, 0.3, eta, lambda: target_batch)
    source.add_world_model_term(term)
    seen = []
    for i in range(5):
        metrics, _ = source.train_world_model(random_batch(i))
        seen.append(float(metrics["coworld/eta"]))
    assert seen == pytest.approx([1.0, 0.7, 0.4, 0.1, 0.1])


# -- Stage C ------------------------------------------------------------------------------------------
def test_value_constraint_gradient_only_where_target_exceeds_source() -> None:
    v_tg = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    v_src = torch.tensor([2.0, 2.0, 1.0, 0.0], requires_grad=True)
    weight = torch.ones(4)
    loss, active = value_constraint(v_tg, v_src, weight, alpha=2.0)
    loss.backward()
    assert active.tolist() == [False, False, True, True]
    assert v_tg.grad is not None
    assert v_tg.grad[:2].tolist() == [0.0, 0.0], "no gradient where v_tg <= v_src (ties included)"
    assert torch.all(v_tg.grad[2:] > 0) and v_tg.grad[2:].tolist() == pytest.approx([0.5, 0.5])
    assert v_src.grad is None, "sg(v_src)"
    assert loss.item() == pytest.approx(2.0 * (2 + 2 + 3 + 4) / 4)


def test_source_critic_gets_no_gradient_from_the_target_loss() -> None:
    target, source = tiny_agent(0), tiny_agent(1)
    target.critic_terms.append(ValueConstraint(lambda: source.behavior, alpha=2.0))
    critic_before = copy.deepcopy(source.behavior.state_dict())
    target_critic_before = copy.deepcopy(target.behavior.critic.state_dict())
    metrics = target.train_step(random_batch(0))
    assert 0.0 <= metrics["coworld/constraint_active"] <= 1.0
    assert all(p.grad is None for p in source.behavior.parameters())
    for key, value in source.behavior.state_dict().items():
        assert torch.equal(value, critic_before[key])
    critic = target.behavior.critic.state_dict()
    changed = any(not torch.equal(v, target_critic_before[k]) for k, v in critic.items())
    assert changed
