"""Domain-selective distillation (Eq. 5–6): softmax over labels, the 0.1 floor without renormalisation, the
loss on known numbers, and where L_distill's gradient goes."""

from __future__ import annotations

import math

import pytest
from helpers_vid2act import make_batch, make_student, make_teacher

torch = pytest.importorskip("torch")

from xfer_plugins.vid2act.distill import DomainSelector  # noqa: E402


def selector_with_known_weights(probs: list[float], feat_dim: int = 3) -> tuple[DomainSelector, torch.Tensor]:
    """A selector whose F_weight reads the first teacher feature only, and teacher features whose first entry
    is ln p_k, so softmax_k gives exactly ``probs``; F_distill is the identity."""
    selector = DomainSelector(feat_dim, floor=0.1)
    with torch.no_grad():
        selector.weight.weight.zero_()
        selector.weight.weight[0, 0] = 1.0
        selector.weight.bias.zero_()
        selector.distill.weight.copy_(torch.eye(feat_dim))
        selector.distill.bias.zero_()
    teacher = torch.zeros(len(probs), 1, feat_dim)
    teacher[:, 0, 0] = torch.log(torch.tensor(probs))
    return selector, teacher


def test_weights_are_a_softmax_over_labels() -> None:
    selector = DomainSelector(5)
    teacher, student = torch.randn(4, 2, 3, 5), torch.randn(2, 3, 5)
    weights = selector.weights(teacher, student)
    assert weights.shape == (4, 2, 3)
    assert torch.allclose(weights.sum(0), torch.ones(2, 3), atol=1e-6)
    assert (weights > 0).all()
    # the score of label k depends on (s^k, e) only: permuting the teacher's labels permutes the weights
    assert torch.allclose(selector.weights(teacher.flip(0), student), weights.flip(0), atol=1e-6)


def test_floor_is_elementwise_without_renormalisation() -> None:
    selector, teacher = selector_with_known_weights([0.9, 0.06, 0.04])
    raw = selector.weights(teacher, torch.zeros(1, 3))
    assert torch.allclose(raw[:, 0], torch.tensor([0.9, 0.06, 0.04]), atol=1e-6)
    floored = selector.floored(raw)
    assert torch.allclose(floored[:, 0], torch.tensor([0.9, 0.1, 0.1]), atol=1e-6)
    assert floored.sum().item() == pytest.approx(1.1, abs=1e-6)  # not renormalised to 1


def test_distill_loss_on_known_numbers() -> None:
    """Eq. 6 (reduction sum, the default): L = Σ_k max(0.1, w_k) · ‖e − u_k‖² with u_k = s_k (identity
    F_distill); the authors' code's mean over the F features is the same divided by F."""
    probs = [0.7, 0.25, 0.05]
    selector, teacher = selector_with_known_weights(probs)
    student = torch.tensor([[1.0, 2.0, -1.0]])
    result = selector(teacher, student)
    # by hand: s_k = (ln p_k, 0, 0), so ‖e − s_k‖² = (1 − ln p_k)² + 4 + 1
    expected = sum(max(0.1, p) * ((1 - math.log(p)) ** 2 + 5) for p in probs)
    assert result.loss.item() == pytest.approx(expected, rel=1e-5)
    assert torch.allclose(result.used[:, 0], torch.tensor([0.7, 0.25, 0.1]), atol=1e-6)
    assert result.weights.sum().item() == pytest.approx(1.0, abs=1e-6)
    selector.reduction = "mean"
    assert selector(teacher, student).loss.item() == pytest.approx(expected / 3, rel=1e-5)


def test_distill_loss_sums_features_and_averages_batch_and_time_like_the_backbone() -> None:
    """Over a [B, L] batch the loss is (1 / (B·L)) Σ_b Σ_t Σ_k w_k ‖e − u_k‖² — Eq. 6's Σ_t averaged over the
    batch and divided by L, exactly as the backbone reduces the reconstruction (sum over pixels, mean over
    batch and time), so α·L_distill keeps Eq. 7's balance."""
    selector = DomainSelector(2, floor=0.0, uniform=True)  # w_k = 1/2
    with torch.no_grad():
        selector.distill.weight.copy_(torch.eye(2))
        selector.distill.bias.zero_()
    teacher = torch.zeros(2, 2, 3, 2)  # [K, B, L, F]
    teacher[1] = 1.0
    student = torch.arange(12, dtype=torch.float32).view(2, 3, 2)
    by_hand = sum(0.5 * ((student[b, t] - teacher[k, b, t]) ** 2).sum()
                  for k in range(2) for b in range(2) for t in range(3)) / 6
    assert selector(teacher, student).loss.item() == pytest.approx(float(by_hand), rel=1e-6)
    # the backbone's image term has the same reduction: doubling L doubles neither
    doubled = selector(torch.cat([teacher, teacher], 2), torch.cat([student, student], 1)).loss
    assert doubled.item() == pytest.approx(float(by_hand), rel=1e-6)
    from xfer.dreamer.observation import ObsDecoder
    image = torch.zeros(2, 3, 64, 64, 3, dtype=torch.uint8)
    recon = {"image": torch.full((2, 3, 3, 64, 64), 0.5)}
    assert ObsDecoder.loss(recon, {"image": image})["image"].item() == pytest.approx(0.5 * 64 * 64 * 3)


def test_uniform_weights_ablation() -> None:
    selector = DomainSelector(4, uniform=True)
    teacher, student = torch.randn(5, 2, 4), torch.randn(2, 4, requires_grad=True)
    result = selector(teacher, student)
    assert torch.allclose(result.used, torch.full((5, 2), 0.2))
    result.loss.backward()
    assert selector.weight.weight.grad is None  # F_weight plays no part
    assert selector.distill.weight.grad is not None


def test_distill_gradient_reaches_student_and_selector_never_teacher() -> None:
    torch.manual_seed(0)
    teacher = make_teacher()
    agent = make_student(teacher)
    batch = agent.to_tensors(make_batch())
    loss, _, out = agent.world_model.loss(batch)
    agent.world_model.zero_grad()
    term, metrics = agent._distill_term(out, batch)
    term.backward()
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    assert agent.selector.distill.weight.grad.abs().sum() > 0
    assert agent.selector.weight.weight.grad.abs().sum() > 0
    assert agent.world_model.encoder.conv.net[0].weight.grad.abs().sum() > 0
    assert agent.world_model.rssm.obs_stats.weight.grad.abs().sum() > 0
    assert set(metrics) >= {"vid2act/distill_loss", "vid2act/weight/a", "vid2act/label_used/c"}
    weights = sum(metrics[f"vid2act/weight/{task}"] for task in "abc")
    assert float(weights) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("state", ["prior", "posterior"])
def test_weights_and_distillation_read_the_predicted_student_state(monkeypatch: pytest.MonkeyPatch,
                                                                   state: str) -> None:
    """Sec. 4.3: Eq. 5–6 compare s_t^k with the *predicted* e_t ~ p(e_{t−1}, a_{t−1}) (default); the authors'
    code uses the posterior. Checked on the tensor F_weight and the distance read, and on the gradient: only
    the predicted state carries L_distill into the student's transition head p(ẑ | h)."""
    torch.manual_seed(0)
    agent = make_student(make_teacher(), student_state=state)
    seen = []
    original = agent.selector.weights
    monkeypatch.setattr(agent.selector, "weights", lambda t, s: seen.append(s) or original(t, s))
    batch = agent.to_tensors(make_batch())
    _, _, out = agent.world_model.loss(batch)
    agent.world_model.zero_grad()
    term, _ = agent._distill_term(out, batch)
    expected = agent.world_model.rssm.feat(out.prior if state == "prior" else out.post)
    assert len(seen) == 1 and torch.equal(seen[0], expected)
    assert not torch.equal(out.prior.stoch, out.post.stoch)  # the two choices differ on this batch
    term.backward()
    head = agent.world_model.rssm.img_stats.weight.grad
    if state == "prior":
        assert head is not None and head.abs().sum() > 0
    else:
        assert head is None or head.abs().sum() == 0


def test_training_leaves_the_teacher_unchanged() -> None:
    torch.manual_seed(1)
    teacher = make_teacher()
    before = {name: p.clone() for name, p in teacher.state_dict().items()}
    agent = make_student(teacher)
    metrics = agent.train_step(make_batch())
    assert math.isfinite(metrics["vid2act/distill_loss"])
    for name, value in teacher.state_dict().items():
        assert torch.equal(value, before[name]), name
