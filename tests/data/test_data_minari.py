"""Minari round trips in a temporary MINARI_DATASETS_PATH (nothing touches the network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xfer.data.dataset import Dataset
from xfer.errors import XferError

pytest.importorskip("minari")
pytest.importorskip("h5py")

from xfer.data.minari_io import export_minari, import_minari  # noqa: E402


@pytest.fixture(autouse=True)
def _local_minari(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))


def _same(a: Path, b: Path) -> None:
    left, right = Dataset.open(a), Dataset.open(b)
    assert len(left) == len(right)
    for x, y in zip(left, right, strict=True):
        assert set(x) == set(y)
        for key in x:
            assert x[key].dtype == y[key].dtype, key
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def test_export_then_import_gives_the_same_arrays(tmp_path: Path, make_dataset) -> None:
    path = make_dataset([5, 7, 3])
    where = export_minari(path, "xfer/reach-test-v0")
    assert (where / "data" / "main_data.hdf5").exists()
    back = import_minari("xfer/reach-test-v0", tmp_path / "back")
    _same(path, back)
    meta = Dataset.open(back).meta
    assert (meta["suite"], meta["task"], meta["policy"]) == ("fake", "reach", "random")
    assert meta["source"] == "minari:xfer/reach-test-v0" and meta["success_rate"] == 1.0

    import minari

    theirs = minari.load_dataset("xfer/reach-test-v0")  # usable by other tools, in Minari's convention
    first = next(iter(theirs.iterate_episodes()))
    original = Dataset.open(path).episode(0)
    assert first.observations["image"].shape == (6, 8, 8, 3) and first.actions.shape == (5, 2)
    np.testing.assert_array_equal(first.actions, original["action"][1:])
    np.testing.assert_allclose(first.rewards, original["reward"][1:])


def test_discrete_round_trip(tmp_path: Path, make_dataset) -> None:
    path = make_dataset([4, 4], discrete=True, action=6, state=None)
    export_minari(path, "atari-like-v1")
    import minari

    assert minari.load_dataset("atari-like-v1").action_space.n == 6
    back = import_minari("atari-like-v1", tmp_path / "back")
    _same(path, back)
    assert Dataset.open(back).discrete


def test_errors_are_named(tmp_path: Path, make_dataset) -> None:
    path = make_dataset([3])
    export_minari(path, "dup-v0")
    with pytest.raises(XferError, match="already exists"):
        export_minari(path, "dup-v0")
    with pytest.raises(XferError, match="not available locally"):
        import_minari("nothing-here-v0", tmp_path / "x")
    with pytest.raises(XferError, match="Malformed dataset ID"):
        export_minari(path, "no version")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_import_refuses_datasets_without_images(tmp_path: Path) -> None:
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

    buffer = EpisodeBuffer(observations=np.zeros((4, 3), np.float32), actions=np.zeros((3, 2), np.float32),
                           rewards=np.zeros(3), terminations=np.zeros(3, bool), truncations=np.zeros(3, bool))
    minari.create_dataset_from_buffers(
        "vector-v0", [buffer], action_space=gym.spaces.Box(-1, 1, (2,), np.float32),
        observation_space=gym.spaces.Box(-np.inf, np.inf, (3,), np.float32), algorithm_name="x",
        author="t", author_email="t", code_permalink="t", description="t")
    with pytest.raises(XferError, match="'vector-v0': observation space .* has no image"):
        import_minari("vector-v0", tmp_path / "x")
