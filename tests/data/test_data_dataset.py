"""dataset.json: statistics, opening, and refusing datasets that do not fit the recipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xfer.data.dataset import Dataset, DatasetFit, read_manifest
from xfer.errors import XferError


def test_manifest_statistics(make_dataset) -> None:
    path = make_dataset([4, 6, 8])
    meta = read_manifest(path)
    assert meta["format_version"] == 1 and meta["complete"] is True
    assert meta["episodes"] == 3 and meta["steps"] == 18
    assert meta["length"] == {"min": 4, "max": 8, "mean": 6.0}
    returns = [sum(t / 10 for t in range(1, n + 1)) for n in (4, 6, 8)]
    assert meta["return"]["mean"] == pytest.approx(np.mean(returns), abs=1e-5)
    assert meta["return"]["std"] == pytest.approx(np.std(returns), abs=1e-5)
    assert meta["success_rate"] == 1.0
    assert meta["observation"] == {"image": {"shape": [8, 8, 3], "dtype": "uint8"},
                                   "state": {"shape": [3], "dtype": "float32"}}
    assert meta["action"]["size"] == 2 and meta["action"]["discrete"] is False
    assert meta["suite"] == "fake" and meta["policy"] == "random"


def test_discrete_actions_are_recorded_one_hot(make_dataset) -> None:
    meta = read_manifest(make_dataset([3], discrete=True, action=5))
    assert meta["action"] == {"size": 5, "discrete": True, "encoding": "one-hot"}


def test_open_loads_episodes_and_honours_max_episodes(make_dataset) -> None:
    dataset = Dataset.open(make_dataset([3, 3, 3, 3]), max_episodes=2)
    assert len(dataset) == 2 and dataset.steps == 6
    assert [ep["state"][0, 0] for ep in dataset] == [0, 1]
    batch = dataset.replay().sample(50, 2, np.random.default_rng(0))
    assert set(batch["state"][:, 0, 0].tolist()) == {0.0, 1.0}  # only the first two episodes


def test_wrong_action_size_is_refused_naming_dataset_field_expected_found(make_dataset) -> None:
    path = make_dataset([3])
    dataset = Dataset.open(path)
    dataset.check_fits(DatasetFit(suite="fake", task="reach", image_shape=(8, 8, 3), action_size=2))
    with pytest.raises(XferError) as info:
        dataset.check_fits(DatasetFit(suite="fake", action_size=5))
    message = info.value.message
    assert str(path) in message and "action size: expected 5, found 2" in message
    assert "image" not in message


def test_wrong_image_size_is_refused(make_dataset) -> None:
    path = make_dataset([3])
    with pytest.raises(XferError, match=r"image shape: expected 64x64x3, found 8x8x3"):
        Dataset.open(path).check_fits(DatasetFit(image_shape=(64, 64, 3)))
    with pytest.raises(XferError, match=r"suite: expected metaworld, found fake; task: expected x"):
        Dataset.open(path).check_fits(DatasetFit(suite="metaworld", task="x"))


def test_open_refuses_non_datasets_and_incomplete_ones(tmp_path: Path, make_dataset) -> None:
    with pytest.raises(XferError, match="does not exist"):
        Dataset.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(XferError, match="no dataset.json"):
        Dataset.open(tmp_path / "empty")
    path = make_dataset([3])
    meta = json.loads((path / "dataset.json").read_text())
    (path / "dataset.json").write_text(json.dumps({**meta, "complete": False}))
    with pytest.raises(XferError, match="incomplete"):
        Dataset.open(path)
    (path / "dataset.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(XferError, match="'format_version': expected at most 1, found 99"):
        Dataset.open(path)
    (path / "dataset.json").write_text("{not json")
    with pytest.raises(XferError, match="not valid JSON"):
        Dataset.open(path)


def test_verify_names_the_corrupt_file_only(make_dataset) -> None:
    dataset = Dataset.open(make_dataset([3, 3, 3]))
    victim = dataset.files[2]
    victim.write_bytes(victim.read_bytes()[:-40])
    problems = dataset.verify()
    assert [path for path, _ in problems] == [victim]
    assert len(dataset.episode(0)["reward"]) == 4
