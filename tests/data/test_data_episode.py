"""Episode files: round trip, the row convention, atomic writes, and named errors for broken files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from xfer.data.episode import (
    EpisodeBuilder,
    atomic_save_npz,
    episode_files,
    load_episode,
    parse_filename,
    validate_episode,
    write_episode,
)
from xfer.errors import XferError


def test_round_trip_keeps_arrays_and_dtypes(tmp_path: Path, episode) -> None:
    original = episode(12, seed=3)
    path = write_episode(tmp_path, 7, original)
    assert path.name == "ep000007_len11.npz"
    assert parse_filename(path) == (7, 11)
    loaded = load_episode(path)
    assert set(loaded) == set(original)
    for key, value in original.items():
        assert loaded[key].dtype == value.dtype, key
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)


def test_validation_names_key_expected_and_found(episode) -> None:
    bad = episode(5)
    bad["reward"] = bad["reward"].astype(np.float64)
    with pytest.raises(XferError, match=r"'reward' has dtype float64, expected float32"):
        validate_episode(bad, name="ep")
    short = episode(5)
    short["action"] = short["action"][:4]
    with pytest.raises(XferError, match=r"'action' has 4 rows, expected 5"):
        validate_episode(short)
    missing = episode(5)
    del missing["success"]
    with pytest.raises(XferError, match="missing key.*success"):
        validate_episode(missing)
    no_observation = episode(5)
    del no_observation["image"]
    no_observation.pop("state", None)
    with pytest.raises(XferError, match="missing key.*image or state"):
        validate_episode(no_observation)
    no_last = episode(5)
    del no_last["is_last"]
    assert validate_episode(no_last)["is_last"].tolist() == [False] * 4 + [True]


def test_leftover_temp_file_from_a_crash_is_never_loaded(tmp_path: Path, episode) -> None:
    write_episode(tmp_path, 0, episode(4))
    # a crash between writing and renaming leaves a hidden partial temp file behind
    (tmp_path / ".ep000001_len3.npz.tmp-4242").write_bytes(b"PK\x03\x04 half an archive")
    assert [p.name for p in episode_files(tmp_path)] == ["ep000000_len3.npz"]


def test_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, episode) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_save_npz(tmp_path / "ep000000_len3.npz", episode(4))
    assert list(tmp_path.iterdir()) == []


def test_truncated_file_gives_named_error_and_others_still_load(tmp_path: Path, episode) -> None:
    paths = [write_episode(tmp_path, i, episode(6, seed=i)) for i in range(3)]
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) // 2])
    with pytest.raises(XferError, match=f"episode file {paths[1]} is corrupt or truncated"):
        load_episode(paths[1])
    for path in (paths[0], paths[2]):
        assert len(load_episode(path)["reward"]) == 6


def test_builder_aligns_actions_and_rewards_the_dreamer_way() -> None:
    builder = EpisodeBuilder(action_size=3, discrete=True)
    image = np.zeros((4, 4, 3), np.uint8)
    builder.start({"image": image}, {})
    builder.step({"image": image + 1}, 2, 0.5, False, False, {"success": False})
    builder.step({"image": image + 2}, 0, 1.5, True, True, {"success": True})
    ep = builder.finish()
    assert ep["action"].tolist() == [[0, 0, 0], [0, 0, 1], [1, 0, 0]]  # the action that led to row t
    assert ep["reward"].tolist() == [0.0, 0.5, 1.5]  # the reward received on arriving at row t
    assert ep["image"][:, 0, 0, 0].tolist() == [0, 1, 2]
    assert ep["is_first"].tolist() == [True, False, False]
    assert ep["is_last"].tolist() == [False, False, True]
    assert ep["is_terminal"].tolist() == [False, False, True]
    assert ep["success"].tolist() == [False, False, True]
    assert builder.success_defined


def test_truncation_is_last_but_not_terminal() -> None:
    builder = EpisodeBuilder(action_size=2, discrete=False)
    builder.start({"image": np.zeros((2, 2, 3), np.uint8), "state": np.ones(2)}, {})
    builder.step({"image": np.zeros((2, 2, 3), np.uint8), "state": np.ones(2)}, [0.1, -0.2], 1.0, False, True,
                 {})
    ep = builder.finish()
    assert ep["is_last"].tolist() == [False, True] and ep["is_terminal"].tolist() == [False, False]
    assert ep["state"].dtype == np.float32 and ep["action"].dtype == np.float32
    assert not builder.success_defined


def test_state_only_episode_round_trips(tmp_path: Path, episode) -> None:
    """``env.pixels: false`` gives episodes with a state vector and no image."""
    original = episode(5)
    del original["image"]
    original["state"] = np.arange(25, dtype=np.float32).reshape(5, 5)
    loaded = load_episode(write_episode(tmp_path, 0, original))
    assert "image" not in loaded
    np.testing.assert_array_equal(loaded["state"], original["state"])
