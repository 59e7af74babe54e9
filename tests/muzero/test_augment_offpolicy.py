"""EfficientZero as published: intensity augmentation next to the shift, and the off-policy correction."""

from __future__ import annotations

import numpy as np
import torch

from xfer.muzero.augment import augment, random_intensity, random_shift
from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.networks import EfficientZeroNet
from xfer.muzero.replay import PrioritizedReplay
from xfer.muzero.targets import SampledPositions, TargetSource, corrected_td_steps, make_batch


def test_intensity_scales_each_sample_by_one_clamped_normal_draw() -> None:
    x = torch.rand(6, 8, 5, 5)
    torch.manual_seed(3)
    out = random_intensity(x, 0.05)
    torch.manual_seed(3)
    z = torch.randn(6, 1, 1, 1)
    assert torch.allclose(out, x * (1 + 0.05 * z.clamp(-2, 2)))
    factor = out / x
    assert torch.allclose(factor, factor[:, :1, :1, :1].expand_as(factor))  # one factor per sample
    # a large scale shows the clamp: factors never leave 1 ± 2 * scale
    big = random_intensity(torch.ones(10_000, 1, 1, 1), 1.0)
    assert big.min() >= -1.0 - 1e-6 and big.max() <= 3.0 + 1e-6
    assert (big == 3.0).any() and (big == -1.0).any()
    assert random_intensity(x, 0.0) is x


def test_augment_is_shift_then_intensity() -> None:
    x = torch.rand(4, 3, 6, 6)
    torch.manual_seed(0)
    out = augment(x, 2, 0.05)
    torch.manual_seed(0)
    expected = random_intensity(random_shift(x, 2), 0.05)
    assert torch.equal(out, expected)


def test_corrected_td_steps_by_hand() -> None:
    cfg = EfficientZeroConfig(preset="tiny", training_steps=1000, td_steps=5, auto_td_ratio=0.3)
    # one step shorter per 300 transitions stored since (EZ: (total - idx) // (0.3 * training_steps))
    ages = np.array([1, 299, 300, 599, 600, 1199, 1200, 10**6])
    assert corrected_td_steps(ages, cfg).tolist() == [5, 5, 4, 4, 3, 2, 1, 1]
    off = cfg.model_copy(update={"off_policy_correction": False})
    assert corrected_td_steps(ages, off).tolist() == [5] * 8


def test_ages_count_transitions_stored_since(tiny_cfg, make_game) -> None:
    cfg = tiny_cfg.model_copy(update={"replay_capacity": 25})
    rng = np.random.default_rng(0)
    replay = PrioritizedReplay(cfg)
    for length in (10, 8, 6, 7):  # the first game is evicted at the fourth add: 8 + 6 + 7 = 21 kept
        replay.add(make_game(cfg, length, rng))
    assert replay.first_id == 1
    ages = replay.ages(np.array([1, 1, 2, 3, 3]), np.array([0, 7, 0, 0, 6]))
    assert ages.tolist() == [21, 14, 13, 7, 1]


def test_make_batch_uses_the_shorter_horizon_for_old_positions(tiny_cfg, make_game) -> None:
    cfg = tiny_cfg.model_copy(update={"td_steps": 3, "training_steps": 10, "auto_td_ratio": 1.0,
                                      "discount": 0.5})
    rng = np.random.default_rng(1)
    replay = PrioritizedReplay(cfg)
    replay.add(make_game(cfg, 12, rng, terminal=True))
    positions = SampledPositions(np.array([0, 0]), np.array([0, 0]), np.ones(2, np.float32))
    source = TargetSource(EfficientZeroNet(cfg), policy_mode="stored")  # zero-initialised heads: v ~ 0
    batch = make_batch(replay, positions, cfg, source, rng, ages=np.array([1, 25]))  # horizons 3 and 1
    r = replay.game(0).rewards
    assert np.isclose(float(batch.target_value[0, 0]), r[0] + 0.5 * r[1] + 0.25 * r[2], atol=1e-3)
    assert np.isclose(float(batch.target_value[1, 0]), r[0], atol=1e-3)
    assert r[1] != 0 or r[2] != 0  # the two horizons give different targets for this game
