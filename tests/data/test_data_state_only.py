"""State-only datasets (``env.pixels: false``): written, described, opened, fit-checked and verified."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from xfer.data.cli import data_app
from xfer.data.dataset import Dataset, DatasetFit, finalize_dataset
from xfer.errors import XferError


def test_a_dataset_without_images(make_dataset) -> None:
    path = make_dataset([3, 4], name="state-only")
    for file in sorted(path.glob("ep*.npz")):  # drop the image member, as a pixels: false collection writes
        with np.load(file) as data:
            members = {key: data[key] for key in data.files if key != "image"}
        with open(file, "wb") as handle:
            np.savez_compressed(handle, **members)
    meta = finalize_dataset(path, suite="fake", task="reach", policy="random", seed=0, success_defined=True)
    assert "image" not in meta["observation"] and meta["observation"]["state"]["shape"] == [3]
    dataset = Dataset.open(path)
    assert dataset.image_shape is None and dataset.verify() == []
    dataset.check_fits(DatasetFit(suite="fake", state_size=3, action_size=2))
    with pytest.raises(XferError, match="image shape: expected 64x64x3, found none"):
        dataset.check_fits(DatasetFit(image_shape=(64, 64, 3)))
    with pytest.raises(XferError, match="image size: expected 64x64, found none"):
        dataset.check_fits(DatasetFit(image_size=64))


def test_collect_without_rendering(tmp_path: Path) -> None:
    pytest.importorskip("dm_control")
    out = tmp_path / "cartpole-state"
    settings = ["--set", "env.pixels=false", "--set", "env.state=true", "--set", "env.time_limit=20"]
    result = CliRunner().invoke(data_app, [
        "collect", "--suite", "dmc", "--task", "cartpole-balance", "--episodes", "1", "--out", str(out),
        *settings, "--no-progress"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "none (state only)" in result.output
    dataset = Dataset.open(out)
    assert dataset.image_shape is None and dataset.state_size == 5 and dataset.verify() == []
