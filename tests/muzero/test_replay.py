"""Prioritised replay: sampling, importance weights, priority updates, eviction, save/load."""

from __future__ import annotations

import numpy as np

from xfer.muzero.replay import PrioritizedReplay


def test_sampling_follows_priorities(tiny_cfg, make_game) -> None:
    rng = np.random.default_rng(0)
    replay = PrioritizedReplay(tiny_cfg)
    ids = [replay.add(make_game(tiny_cfg, n, rng)) for n in (5, 7)]
    assert ids == [0, 1] and replay.num_transitions == 12
    sample = replay.sample(64, rng, beta=0.4)
    assert sample.weights.max() == 1.0 and (sample.weights > 0).all()
    assert all(0 <= s < len(replay.game(g)) for g, s in zip(sample.game_ids, sample.steps, strict=True))
    replay.update_priorities(np.array([1]), np.array([3]), np.array([1000.0]))
    sample = replay.sample(200, rng, beta=1.0)
    hot = (sample.game_ids == 1) & (sample.steps == 3)
    assert hot.mean() > 0.8
    assert sample.weights[hot].max() < sample.weights[~hot].min()  # rare samples weigh more


def test_beta_anneals_and_old_games_are_evicted(tiny_cfg, make_game) -> None:
    cfg = tiny_cfg.model_copy(update={"replay_capacity": 20, "training_steps": 100})
    replay = PrioritizedReplay(cfg)
    assert replay.beta(0) == 0.4 and np.isclose(replay.beta(50), 0.7) and replay.beta(500) == 1.0
    rng = np.random.default_rng(0)
    for _ in range(4):
        replay.add(make_game(cfg, 8, rng))
    assert replay.first_id == 2 and replay.num_transitions == 16
    replay.update_priorities(np.array([0, 3]), np.array([1, 1]), np.array([5.0, 6.0]))  # id 0 is gone
    assert replay.priorities[1][1] == 6.0


def test_save_and_load_round_trip(tmp_path, tiny_cfg, make_game) -> None:
    rng = np.random.default_rng(1)
    replay = PrioritizedReplay(tiny_cfg)
    replay.add(make_game(tiny_cfg, 6, rng, terminal=False, task_id=3))
    replay.add(make_game(tiny_cfg, 4, rng), priorities=np.arange(1, 5, dtype=float))
    replay.save(tmp_path / "replay")
    loaded = PrioritizedReplay.load(tmp_path / "replay", tiny_cfg)
    assert loaded.first_id == replay.first_id and loaded.max_priority == replay.max_priority
    for a, b in zip(replay.games, loaded.games, strict=True):
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.policies, b.policies)
        assert (a.terminal, a.task_id) == (b.terminal, b.task_id)
    assert np.array_equal(loaded.priorities[1], [1, 2, 3, 4])


def test_new_games_enter_with_the_largest_priority_stored_now(tiny_cfg, make_game) -> None:
    """EZ code's ``priorities.max()``: once the early large value errors are replaced by smaller ones, new
    games enter at the current largest; ``ever_max`` keeps the largest ever seen."""
    rng = np.random.default_rng(0)
    for mode, expected in (("buffer_max", 2.0), ("ever_max", 50.0)):
        replay = PrioritizedReplay(tiny_cfg.model_copy(update={"new_priority": mode}))
        assert replay.new_priority() == 1.0  # empty
        replay.add(make_game(tiny_cfg, 3, rng))
        replay.update_priorities(np.array([0, 0, 0]), np.array([0, 1, 2]), np.array([50.0, 0.5, 0.5]))
        assert replay.new_priority() == 50.0
        replay.update_priorities(np.array([0]), np.array([0]), np.array([2.0]))  # the large error learned
        replay.add(make_game(tiny_cfg, 4, rng))
        assert replay.priorities[1].tolist() == [expected] * 4, mode
