"""Stage C on built cases where the source critic is above the target critic on some imagined states and
below it on others: the gradient and the active fraction of Eq. 6's α·max(v_tg, sg(v_src)) by hand, inside a
real target update, and Fig. 5(b)'s "w/o Max" variant α·v_tg (Section 4.5)."""

from __future__ import annotations

import copy

import pytest
import torch
from xfer_plugins.coworld.value import ValueConstraint, value_constraint, value_push_down

from xfer.dreamer.agent import DreamerAgent
from xfer.dreamer.config import DreamerConfig

from .test_stages import SHAPES, random_batch


def test_eq6_gradient_and_active_fraction_by_hand() -> None:
    v_tg = torch.tensor([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]], requires_grad=True)
    v_src = torch.tensor([[0.0, -1.0, 0.5], [4.0, -3.0, -2.0]])
    weight = torch.tensor([[1.0, 0.9, 0.81], [1.0, 0.5, 0.25]])
    loss, active = value_constraint(v_tg, v_src, weight, alpha=2.0)
    # by hand: active where v_tg > v_src: (0,0) 1>0, (1,1) 0>-3, (1,2) -1>-2; ties (0,2) and the rest not
    assert active.tolist() == [[True, False, False], [False, True, True]]
    assert active.float().mean().item() == pytest.approx(3 / 6)
    maxima = [[1.0, -1.0, 0.5], [4.0, 0.0, -1.0]]
    expected = 2.0 * sum(w * m for wr, mr in zip(weight.tolist(), maxima, strict=True)
                         for w, m in zip(wr, mr, strict=True)) / 6
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    assert v_tg.grad is not None
    assert v_tg.grad.flatten().tolist() == pytest.approx([2 * 1.0 / 6, 0, 0, 0, 2 * 0.5 / 6, 2 * 0.25 / 6])


def test_without_max_pushes_every_value_down_by_alpha() -> None:
    v_tg = torch.tensor([[1.0, -2.0], [3.0, 0.0]], requires_grad=True)
    weight = torch.tensor([[1.0, 0.5], [1.0, 0.25]])
    loss, active = value_push_down(v_tg, weight, alpha=3.0)
    assert bool(active.all())
    assert loss.item() == pytest.approx(3.0 * (1.0 - 1.0 + 3.0 + 0.0) / 4)
    loss.backward()
    assert v_tg.grad is not None
    assert v_tg.grad.flatten().tolist() == pytest.approx([0.75, 0.375, 0.75, 0.1875])


class Recorder:
    """Wraps a critic term and keeps the inputs of its last call."""

    def __init__(self, term: ValueConstraint) -> None:
        self.term = term
        self.feat = self.weight = self.value = torch.empty(0)

    def __call__(self, imag, ret, value):  # type: ignore[no-untyped-def]
        self.feat, self.weight, self.value = imag.feat[:-1].detach(), ret.weight[:-1], value.detach()
        return self.term(imag, ret, value)


class BuiltSourceCritic:
    """A source critic v_src(ẑ) = v₀(ẑ) ± 1, with v₀ the target critic as built (frozen) and the sign that of
    the first feature's deviation from its batch mean: above the target critic on some imagined states and
    below it on others."""

    def __init__(self, target: DreamerAgent) -> None:
        self.base = copy.deepcopy(target.behavior)

    def frozen_value(self, feat: torch.Tensor) -> torch.Tensor:
        sign = torch.where(feat[..., 0] > feat[..., 0].mean(), 1.0, -1.0)
        return self.base.frozen_value(feat) + sign

    def parameters(self):  # type: ignore[no-untyped-def]
        return self.base.parameters()


def built_case() -> tuple[DreamerAgent, BuiltSourceCritic]:
    torch.manual_seed(0)
    cfg = DreamerConfig.from_preset("tiny", horizon=3, kl_free=0.0, grad_clip=1e9)
    target = DreamerAgent(SHAPES, 3, False, cfg)
    return target, BuiltSourceCritic(target)


@pytest.mark.parametrize("variant", ["min_max", "without_max"])
def test_constraint_gradient_inside_a_target_update(variant: str) -> None:
    alpha = 2.0
    target, source = built_case()
    plain = copy.deepcopy(target)
    recorder = Recorder(ValueConstraint(lambda: source, alpha, variant))  # type: ignore[arg-type]
    target.critic_terms.append(recorder)
    batch = random_batch(0)
    torch.manual_seed(1)
    _, out = target.train_world_model(batch)
    torch.manual_seed(1)
    _, plain_out = plain.train_world_model(batch)
    assert torch.equal(out.feat, plain_out.feat)
    torch.manual_seed(2)
    metrics = target.train_behavior(out, target.to_tensors(batch))
    torch.manual_seed(2)
    plain.train_behavior(plain_out, plain.to_tensors(batch))
    # by hand, from the recorded imagination: where is v_tg above the source critic's value?
    v_src = source.frozen_value(recorder.feat)
    above = recorder.value > v_src
    assert 0.0 < above.float().mean().item() < 1.0, "the built case has both kinds of states"
    active = above if variant == "min_max" else torch.ones_like(above)
    assert metrics["coworld/constraint_active"].item() == pytest.approx(active.float().mean().item())
    # Eq. 6's second term adds α·Σ_active w / N to the critic's output bias gradient (∂v/∂bias = 1)
    expected = alpha * (recorder.weight * active).sum() / active.numel()
    head, plain_head = target.behavior.critic.net[-1], plain.behavior.critic.net[-1]
    assert head.bias.grad is not None and plain_head.bias.grad is not None
    added = head.bias.grad - plain_head.bias.grad
    assert added.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-7)
    assert expected.item() > 0
    assert all(p.grad is None for p in source.parameters()), "sg(v_src): the source critic gets nothing"


def test_constraint_is_silent_where_the_source_is_above_everywhere() -> None:
    target, source = built_case()
    with torch.no_grad():
        source.base.critic.net[-1].bias.add_(1e3)  # v_src ≫ v_tg on every state
    term = ValueConstraint(lambda: source, 2.0)  # type: ignore[arg-type,return-value]
    target.critic_terms.append(term)
    metrics = target.train_step(random_batch(0))
    assert metrics["coworld/constraint_active"] == 0.0
