"""Stage 1 (Sec. 3.1): distillation targets come from the frozen teachers; per-game legal-action masks."""

from __future__ import annotations

import numpy as np
import torch
from xfer_plugins.xtra.config import PretrainSettings
from xfer_plugins.xtra.pretrain import distillation_batches, distillation_update, uniform_positions

SETTINGS = PretrainSettings(teacher_steps=1, distill_steps=1)


def _targets(student, games, teachers, seed: int = 3):
    batches = distillation_batches(student, games, teachers, SETTINGS, np.random.default_rng(seed))
    return [(b.target_value.clone(), b.target_policy.clone()) for b in batches]


def _perturb(net: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5)


def test_student_targets_come_from_the_teachers(games, learner_factory) -> None:
    student = learner_factory(0)
    teachers = [learner_factory(10 + i).net for i in range(len(games))]
    for t in teachers:
        _perturb(t, 7)  # zero-initialised heads would predict 0 everywhere: give the teachers opinions
    before = _targets(student, games, teachers)
    _perturb(student.net, 1)  # a different student: the same targets
    for (v0, p0), (v1, p1) in zip(before, _targets(student, games, teachers), strict=True):
        assert torch.equal(v0, v1) and torch.equal(p0, p1)
    _perturb(teachers[0], 2)  # a different teacher of game 0: game 0's targets change, game 1's do not
    after = _targets(student, games, teachers)
    assert not torch.equal(before[0][0], after[0][0]) or not torch.equal(before[0][1], after[0][1])
    assert torch.equal(before[1][0], after[1][0]) and torch.equal(before[1][1], after[1][1])


def test_teacher_policy_targets_respect_each_games_legal_actions(games, learner_factory) -> None:
    student = learner_factory(0)
    teachers = [learner_factory(10 + i).net for i in range(len(games))]
    for game, (_, policy) in zip(games, _targets(student, games, teachers), strict=True):
        assert policy[..., ~torch.as_tensor(game.legal)].abs().sum() == 0
        assert torch.allclose(policy[:, 0].sum(-1), torch.ones(policy.shape[0]))


def test_policy_loss_is_masked_per_game(games, learner_factory) -> None:
    """Raising the logit of an action legal in game 1 but not in game 0 changes only game 1's loss."""
    student = learner_factory(0)
    teachers = [learner_factory(10 + i).net for i in range(len(games))]
    batches = distillation_batches(student, games, teachers, SETTINGS, np.random.default_rng(0))
    action = 2
    assert not games[0].legal[action] and games[1].legal[action]
    torch.manual_seed(0)
    before = [student.losses(b).policy.item() for b in batches]
    with torch.no_grad():
        student.net.prediction.policy_head[-1].bias[action] += 5.0
    torch.manual_seed(0)
    after = [student.losses(b).policy.item() for b in batches]
    assert after[0] == before[0]
    assert after[1] != before[1]


def test_distillation_samples_uniformly_and_updates_the_student(games, learner_factory) -> None:
    positions = uniform_positions(games[0].replay, 2000, np.random.default_rng(0))
    assert (positions.weights == 1).all()
    counts = np.bincount(positions.game_ids - games[0].replay.first_id, minlength=2)
    assert abs(counts[0] - counts[1]) < 200  # two equally long games
    student = learner_factory(0)
    teachers = [learner_factory(10 + i).net for i in range(len(games))]
    before = [p.clone() for p in student.net.parameters()]
    for _ in range(2):  # the first step has learning rate 0 (linear warm-up from 0)
        stats = distillation_update(student, games, teachers, SETTINGS, np.random.default_rng(0))
    assert {"total", "shooter/policy", "maze/value"} <= set(stats)
    assert any(not torch.equal(a, b) for a, b in zip(before, student.net.parameters(), strict=True))
    assert all(not p.requires_grad for t in teachers for p in t.parameters())
