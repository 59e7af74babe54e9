"""Value-prefix and n-step targets on hand-computed sequences; teacher-supplied targets."""

from __future__ import annotations

import numpy as np
import torch

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.networks import EfficientZeroNet
from xfer.muzero.replay import PrioritizedReplay, SampledPositions
from xfer.muzero.targets import (
    TargetSource,
    bootstrap_indices,
    make_batch,
    nstep_value_targets,
    value_prefix_targets,
)

REWARDS = np.array([1, 0, 2, -1, 3, 1, 1, 0], dtype=np.float32)


def test_value_prefix_targets_reset_every_horizon() -> None:
    assert value_prefix_targets(REWARDS, 1, 5, 5).tolist() == [0, 2, 1, 4, 5, 1]
    assert value_prefix_targets(REWARDS, 1, 5, 2).tolist() == [0, 2, -1, 2, 1, 2]
    assert value_prefix_targets(REWARDS, 6, 5, 5).tolist() == [1, 1, 1, 1, 1, 0]  # held, then reset


def test_nstep_value_targets_by_hand() -> None:
    assert bootstrap_indices(8, 4, 3, 2).tolist() == [6, 7, 8, 8]
    boot = np.array([10.0, 20.0, 30.0, 40.0])
    # k=0: 3 + .5*1 + .25*10; k=1: 1 + .5*1 + .25*20; k=2: 1 + .5*0 (+ .25*30); k=3: 0 (+ .5*40)
    terminal = nstep_value_targets(REWARDS, 4, 3, 2, 0.5, boot, terminal=True)
    truncated = nstep_value_targets(REWARDS, 4, 3, 2, 0.5, boot, terminal=False)
    assert np.allclose(terminal, [6.0, 6.5, 1.0, 0.0])
    assert np.allclose(truncated, [6.0, 6.5, 8.5, 20.0])
    assert np.allclose(nstep_value_targets(REWARDS, 7, 3, 2, 0.5, boot, terminal=True), [0, 0, 0, 0])
    # the last state of a cut history (t + k = 8 = length) is its own bootstrap: v = 20, not 0
    assert np.allclose(nstep_value_targets(REWARDS, 7, 3, 2, 0.5, boot, terminal=False), [5, 20, 0, 0])


def _replay(cfg: EfficientZeroConfig, make_game) -> PrioritizedReplay:
    rng = np.random.default_rng(0)
    replay = PrioritizedReplay(cfg)
    legal = np.array([True, True, False, True, True, False])
    for length in (12, 9):
        replay.add(make_game(cfg, length, rng, legal=legal))
    return replay


def _perturb(net: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))


def test_teacher_targets_come_from_the_teacher(tiny_cfg, make_game) -> None:
    cfg = tiny_cfg.model_copy(update={"init_zero": False})
    torch.manual_seed(0)
    student, teacher = EfficientZeroNet(cfg).eval(), EfficientZeroNet(cfg).eval()
    replay = _replay(cfg, make_game)
    positions = SampledPositions(np.array([0, 0, 1, 1]), np.array([0, 9, 3, 8]), np.ones(4, np.float32))

    def targets(source: TargetSource) -> tuple[torch.Tensor, torch.Tensor]:
        batch = make_batch(replay, positions, cfg, source, np.random.default_rng(5))
        return batch.target_value, batch.target_policy

    for mode in ("mcts", "network"):
        source = TargetSource(teacher, value_mode="nstep", policy_mode=mode)
        value, policy = targets(source)
        assert torch.allclose(policy.sum(-1)[policy.sum(-1) > 0], torch.tensor(1.0))
        assert (policy[..., [2, 5]] == 0).all()  # illegal actions get no target mass
        _perturb(student)
        value2, policy2 = targets(source)
        assert torch.equal(value, value2) and torch.equal(policy, policy2)  # the student plays no part
        own_value, own_policy = targets(TargetSource(student, policy_mode=mode))
        assert not torch.allclose(own_value, value) and not torch.allclose(own_policy, policy)

    source = TargetSource(teacher, value_mode="network", policy_mode="network")
    before = targets(source)
    _perturb(teacher)
    after = targets(source)
    assert not torch.allclose(before[0], after[0]) and not torch.allclose(before[1], after[1])


def test_batch_layout_and_masks(tiny_cfg, make_game) -> None:
    cfg = tiny_cfg
    replay = _replay(cfg, make_game)
    positions = SampledPositions(np.array([1]), np.array([7]), np.ones(1, np.float32))  # 2 steps left
    batch = make_batch(replay, positions, cfg, TargetSource(EfficientZeroNet(cfg), policy_mode="stored"),
                       np.random.default_rng(0))
    game, c, K = replay.game(1), cfg.image_channels, cfg.unroll_steps
    assert batch.obs.shape == (1, (cfg.frame_stack + K) * c, cfg.image_size, cfg.image_size)
    assert torch.equal(batch.obs[0, :c], torch.as_tensor(game.frames[4]))  # frames 4..7 stacked, then 8, 9
    assert torch.equal(batch.obs[0, -c:], torch.as_tensor(game.frames[9]))  # clamped at the last frame
    assert batch.mask[0].tolist() == [1, 1, 0, 0, 0]
    assert batch.actions[0, :2].tolist() == game.actions[7:9].tolist()
    assert torch.allclose(batch.target_policy[0, :2], torch.as_tensor(game.policies[7:9]))
    assert (batch.target_policy[0, 2:] == 0).all() and (batch.target_value[0, 2:] == 0).all()
    prefix = value_prefix_targets(game.rewards, 7, K, cfg.lstm_horizon)[:K]
    assert batch.target_prefix[0].tolist() == prefix.tolist()
