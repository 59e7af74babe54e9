"""The disk-backed replay: sequence sampling, determinism, small caches, online adds, resume, mixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xfer.data.episode import load_episode
from xfer.data.replay import MixtureSampler, ReplayBuffer
from xfer.errors import XferError


def test_sequences_have_the_length_and_never_cross_episodes(make_dataset) -> None:
    replay = ReplayBuffer(make_dataset([5, 9, 30]), readonly=True)
    batch = replay.sample(64, 6, np.random.default_rng(0))
    assert batch["image"].shape == (64, 6, 8, 8, 3) and batch["image"].dtype == np.uint8
    assert batch["action"].shape == (64, 6, 2) and batch["reward"].shape == (64, 6)
    episode_ids, steps = batch["state"][..., 0], batch["state"][..., 1]
    assert (episode_ids == episode_ids[:, :1]).all()  # one episode per sequence
    assert (np.diff(steps, axis=1) == 1).all()  # consecutive rows
    lengths = np.array([5, 9, 30])
    assert (steps[:, -1] <= lengths[episode_ids[:, 0].astype(int)]).all()
    np.testing.assert_allclose(batch["reward"], steps / 10 * (steps > 0), rtol=1e-6)


def test_short_episodes_are_skipped_and_too_long_sequences_refused(make_dataset) -> None:
    replay = ReplayBuffer(make_dataset([2, 20]), readonly=True)
    batch = replay.sample(32, 5, np.random.default_rng(1))
    assert (batch["state"][..., 0] == 1).all()
    with pytest.raises(XferError, match="no episode has 50 rows"):
        replay.sample(2, 50, np.random.default_rng(1))


def test_sampling_is_uniform_over_windows(make_dataset) -> None:
    replay = ReplayBuffer(make_dataset([9, 19]), readonly=True)  # 10 and 20 rows: 6 + 16 windows of 5
    assert replay.num_sequences(5) == 22
    batch = replay.sample(22_000, 5, np.random.default_rng(2))
    starts = batch["state"][:, 0, 0] * 100 + batch["state"][:, 0, 1]
    _, counts = np.unique(starts, return_counts=True)
    assert len(counts) == 22
    assert counts.min() > 800 and counts.max() < 1200  # expected 1000 each


def test_prioritize_ends_weights_each_last_window_length_plus_one_times(make_dataset) -> None:
    """DreamerV2 code: index = min(randint(rows - L + 1 + L), rows - L). Episodes of 10 and 20 rows, L = 5:
    6 + 16 windows and 5 extra draws each, all on the last window: 32 slots; a middle start has 1/32, the
    last start of either episode 6/32; a 2-row episode (no window) gets no extra slots."""
    replay = ReplayBuffer(make_dataset([9, 19, 1]), readonly=True, sampling="ends")
    batch = replay.sample(64_000, 5, np.random.default_rng(3))
    episode, start = batch["state"][:, 0, 0].astype(int), batch["state"][:, 0, 1].astype(int)
    assert set(episode) == {0, 1}
    freq = {(e, s): np.mean((episode == e) & (start == s)) for e in (0, 1) for s in range(16)}
    assert abs(freq[0, 5] - 6 / 32) < 0.01 and abs(freq[1, 15] - 6 / 32) < 0.01
    assert all(abs(freq[0, s] - 1 / 32) < 0.004 for s in range(5))
    assert all(abs(freq[1, s] - 1 / 32) < 0.004 for s in range(15))
    assert ReplayBuffer(make_dataset([9]), readonly=True).sampling == "uniform"


def test_stream_sampling_crosses_episodes_and_covers_every_row_alike(make_dataset) -> None:
    """Episodes of 10, 20 and 2 rows as one stream of 32: starts uniform over 0..27 (L = 5), a sequence runs
    on into the next episode (its first row is_first), and an episode's first row is covered as often as a
    middle row."""
    replay = ReplayBuffer(make_dataset([9, 19, 1]), readonly=True, sampling="stream")
    batch = replay.sample(56_000, 5, np.random.default_rng(4))
    episode, step = batch["state"][..., 0].astype(int), batch["state"][..., 1].astype(int)
    position = np.array([0, 10, 30])[episode] + step  # the row's place in the stream
    assert (np.diff(position, axis=1) == 1).all()  # consecutive rows of the stream
    np.testing.assert_array_equal(batch["is_first"], step == 0)
    crossing = (episode[:, 0] != episode[:, -1]).mean()
    assert abs(crossing - 6 / 28) < 0.01  # starts 6..9 and 26..27 cross a boundary
    assert abs(np.mean(position[:, 0] == 27) - 1 / 28) < 0.003  # ep 1 row 17 into ep 2's two rows
    covered = np.bincount(position.ravel(), minlength=32) / len(position)
    assert abs(covered[10] - 5 / 28) < 0.01 and abs(covered[20] - 5 / 28) < 0.01  # first row = middle row
    uniform = ReplayBuffer(make_dataset([9, 19, 1]), readonly=True)
    uniform = uniform.sample(56_000, 5, np.random.default_rng(4))
    first_rows = (uniform["state"][..., 0] == 1) & (uniform["state"][..., 1] == 0)
    assert first_rows.sum() / len(first_rows) < 0.5 * covered[10]  # within episodes: 1 window of 22


def test_sampling_is_deterministic_given_the_rng(make_dataset) -> None:
    path = make_dataset([7, 12, 15])
    a = ReplayBuffer(path, readonly=True).sample(8, 4, np.random.default_rng(5))
    b = ReplayBuffer(path, readonly=True).sample(8, 4, np.random.default_rng(5))
    c = ReplayBuffer(path, readonly=True).sample(8, 4, np.random.default_rng(6))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["image"], c["image"])


def test_larger_than_memory_path_gives_the_same_samples(make_dataset) -> None:
    path = make_dataset([20] * 8)
    roomy = ReplayBuffer(path, readonly=True)
    tiny = ReplayBuffer(path, readonly=True, cache_bytes=1)  # at most one episode in memory
    for seed in range(5):
        a = roomy.sample(16, 5, np.random.default_rng(seed))
        b = tiny.sample(16, 5, np.random.default_rng(seed))
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
        assert tiny.cached_episodes == 1
    assert roomy.cached_episodes == 8 and tiny.loads > roomy.loads


def test_capacity_limits_sampling_to_the_newest_episodes(make_dataset) -> None:
    replay = ReplayBuffer(make_dataset([10, 10, 10]), readonly=True, capacity_steps=20)
    ids = replay.sample(200, 3, np.random.default_rng(0))["state"][:, 0, 0]
    assert set(ids.tolist()) == {1.0, 2.0}


def _rows(episode: dict[str, np.ndarray]) -> list[dict[str, object]]:
    """Rows as an environment loop makes them: Python floats and bools for the scalars."""
    return [{key: value[t].item() if value.ndim == 1 else value[t] for key, value in episode.items()}
            for t in range(len(episode["reward"]))]


def test_add_step_writes_finished_episodes_and_state_dict_resumes_exactly(tmp_path: Path, episode) -> None:
    replay = ReplayBuffer(tmp_path / "replay")
    first, second = episode(6, seed=0, episode_id=0), episode(8, seed=1, episode_id=1)
    third = episode(5, seed=2)
    written = [replay.add_step(row, worker=0) for row in _rows(first)]
    assert written[:-1] == [None] * 5 and written[-1].name == "ep000000_len5.npz"
    for row in _rows(second)[:4]:  # in progress at the checkpoint
        replay.add_step(row, worker=1)
    state = replay.state_dict()
    assert state["episodes"] == ["ep000000_len5.npz"] and state["next_index"] == 1
    assert state["in_progress"][1]["image"].shape == (4, 8, 8, 3)

    replay.add_episode(third)  # written after the checkpoint: an exact resume must not see it
    resumed = ReplayBuffer(tmp_path / "replay")
    assert resumed.num_episodes == 2
    resumed.load_state_dict(state)
    assert resumed.num_episodes == 1 and (tmp_path / "replay" / "orphaned" / "ep000001_len4.npz").exists()
    for row in _rows(second)[4:]:
        resumed.add_step(row, worker=1)
    assert [f.name for f in resumed.files] == ["ep000000_len5.npz", "ep000001_len7.npz"]
    restored = load_episode(resumed.files[1])
    for key in second:
        np.testing.assert_array_equal(restored[key], second[key])


def test_readonly_and_missing_files(tmp_path: Path, make_dataset, episode) -> None:
    replay = ReplayBuffer(make_dataset([3]), readonly=True)
    with pytest.raises(XferError, match="read-only"):
        replay.add_episode(episode(3))
    online = ReplayBuffer(tmp_path / "r")
    with pytest.raises(XferError, match="missing"):
        online.load_state_dict({"episodes": ["ep000000_len3.npz"], "next_index": 1})


def test_mixture_draws_equal_shares_and_labels_rows(make_dataset) -> None:
    # source i holds episodes with ids 10i and 10i + 1, so each row says which source it came from
    sources = [ReplayBuffer(make_dataset([12] * 2, name=f"src{i}", first_id=10 * i), readonly=True)
               for i in range(3)]
    mixture = MixtureSampler(sources)
    batch = mixture.sample(12, 4, np.random.default_rng(0))
    assert batch["source"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    np.testing.assert_array_equal(batch["state"][:, 0, 0] // 10, batch["source"])
    assert batch["image"].shape == (12, 4, 8, 8, 3)
    uneven = mixture.sample(13, 4, np.random.default_rng(0))
    counts = np.bincount(uneven["source"], minlength=3)
    assert sorted(counts.tolist()) == [4, 4, 5] and len(uneven["reward"]) == 13
    np.testing.assert_array_equal(uneven["state"][:, 0, 0] // 10, uneven["source"])


def test_mixture_refuses_sources_of_different_shapes(make_dataset) -> None:
    a = ReplayBuffer(make_dataset([5], name="a"), readonly=True)
    b = ReplayBuffer(make_dataset([5], name="b", action=4), readonly=True)
    with pytest.raises(XferError, match="key 'action' differs in shape"):
        MixtureSampler([a, b]).sample(4, 3, np.random.default_rng(0))
