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


def _gray(levels: list[int]) -> np.ndarray:
    return np.stack([np.full((1, 2, 2), level, np.uint8) for level in levels])


def test_stacked_obs_of_a_continued_segment_reads_its_past_frames(tiny_cfg, make_game) -> None:
    """A later segment of an episode stacks the frames before its first one (EZ code's init with the last
    stacked observations); an episode's first segment repeats its first frame, as before."""
    rng = np.random.default_rng(0)
    first = make_game(tiny_cfg, 3, rng)
    first.frames = _gray([10, 11, 12, 13])
    assert [int(x) for x in first.stacked_obs(1, 4)[:, 0, 0]] == [10, 10, 10, 11]
    later = make_game(tiny_cfg, 3, rng, terminal=False)
    later.frames, later.past_frames = _gray([20, 21, 22, 23]), _gray([17, 18, 19])
    assert [int(x) for x in later.stacked_obs(0, 4)[:, 0, 0]] == [17, 18, 19, 20]
    assert [int(x) for x in later.stacked_obs(2, 4)[:, 0, 0]] == [19, 20, 21, 22]
    assert [int(x) for x in later.stacked_obs(3, 4)[:, 0, 0]] == [20, 21, 22, 23]
    assert [int(x) for x in later.frame_window(-5, -1)[:, 0, 0]] == [17, 17, 17, 18, 19]  # earliest held
    assert [int(x) for x in later.frame_window(2, 5)[:, 0, 0]] == [22, 23, 23, 23]  # past T: the last


def test_past_frames_survive_save_and_load_and_old_files_load(tmp_path, tiny_cfg, make_game) -> None:
    rng = np.random.default_rng(2)
    replay = PrioritizedReplay(tiny_cfg)
    game = make_game(tiny_cfg, 4, rng, terminal=False)
    game.past_frames = game.frames[:3].copy() + 1
    replay.add(game)
    replay.add(make_game(tiny_cfg, 2, rng))
    replay.save(tmp_path / "replay")
    loaded = PrioritizedReplay.load(tmp_path / "replay", tiny_cfg)
    assert np.array_equal(loaded.games[0].past_frames, game.past_frames)
    assert len(loaded.games[1].past_frames) == 0
    path = sorted((tmp_path / "replay").glob("game_*.npz"))[0]  # a file from before past_frames
    with np.load(path) as data:
        old = {key: data[key] for key in data.files if key != "past_frames"}
    np.savez_compressed(path, **old)
    again = PrioritizedReplay.load(tmp_path / "replay", tiny_cfg)
    assert len(again.games[0].past_frames) == 0
    assert np.array_equal(again.games[0].stacked_obs(0, 4), np.concatenate([game.frames[0]] * 4))
