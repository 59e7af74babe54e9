"""``xfer data info --verify`` loads every episode as training does: it passes only what training reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from xfer.data.cli import data_app
from xfer.data.dataset import Dataset
from xfer.data.episode import load_episode
from xfer.data.replay import ReplayBuffer
from xfer.errors import XferError

runner = CliRunner()


def _replace_with(path: Path, **arrays: np.ndarray) -> None:
    """Rewrite an episode file with some members replaced (written with numpy's defaults, pickles allowed)."""
    with np.load(path) as data:
        members = {key: data[key] for key in data.files}
    members.update(arrays)
    with open(path, "wb") as handle:
        np.savez_compressed(handle, **members)


def _training_error(dataset_path: Path) -> str:
    """The error the replay buffer (what the training loops sample from) gives for the dataset."""
    buffer = ReplayBuffer(dataset_path, readonly=True)
    with pytest.raises(XferError) as info:
        for _ in range(20):
            buffer.sample(2, 2, np.random.default_rng(0))
    return info.value.message


def test_pickled_object_array_fails_verify_like_training(make_dataset) -> None:
    path = make_dataset([3, 3])
    victim = sorted(path.glob("ep*.npz"))[1]
    _replace_with(victim, reward=np.array([0.0, 0.1, {"code": "x"}, 0.3], dtype=object))
    assert victim.stat().st_size > 0 and np.load(victim, allow_pickle=True)["reward"].dtype == object
    problems = Dataset.open(path).verify()
    assert [file for file, _ in problems] == [victim]
    assert "Object arrays cannot be loaded" in problems[0][1]
    assert problems[0][1] == _training_error(path)

    result = runner.invoke(data_app, ["info", str(path), "--verify"], env={"COLUMNS": "300"})
    assert isinstance(result.exception, XferError), result.output
    assert "1 of 2 episode files" in result.exception.message
    assert "all 2 episode files are intact" not in result.output


def test_wrong_dtype_fails_verify_like_training(make_dataset) -> None:
    path = make_dataset([3])
    victim = sorted(path.glob("ep*.npz"))[0]
    _replace_with(victim, reward=np.zeros(4, np.float64))
    problems = Dataset.open(path).verify()
    assert len(problems) == 1 and "dtype float64, expected float32" in problems[0][1]
    assert problems[0][1] == _training_error(path)


def test_rows_that_disagree_with_the_file_name_are_refused(make_dataset) -> None:
    """Sampling trusts the length in the file name; a file holding fewer rows would index past its end."""
    path = make_dataset([3])
    victim = sorted(path.glob("ep*.npz"))[0]
    with np.load(victim) as data:
        shorter = {key: data[key][:3] for key in data.files}
    with open(victim, "wb") as handle:
        np.savez_compressed(handle, **shorter)
    with pytest.raises(XferError, match="3 rows, but its name says length 3 .4 rows."):
        load_episode(victim)
    problems = Dataset.open(path).verify()
    assert len(problems) == 1 and problems[0][1] == _training_error(path)


def test_intact_dataset_verifies(make_dataset) -> None:
    path = make_dataset([3, 4])
    assert Dataset.open(path).verify() == []
    result = runner.invoke(data_app, ["info", str(path), "--verify"], env={"COLUMNS": "300"})
    assert result.exit_code == 0 and "all 2 episode files are intact" in result.output


def test_verify_output_keeps_brackets(make_dataset) -> None:
    """Paths are printed as they are; rich markup must not eat a '[bold]' in them."""
    path = make_dataset([3], name="[bold]ds")
    victim = sorted(path.glob("ep*.npz"))[0]
    _replace_with(victim, action=np.zeros((4, 2, 1), np.float32))
    result = runner.invoke(data_app, ["info", str(path), "--verify"], env={"COLUMNS": "300"})
    assert isinstance(result.exception, XferError)
    assert f"[bold]ds/{victim.name}" in result.output and "(4, 2, 1)" in result.output, result.output


def test_export_replay_into_an_unwritable_directory(tmp_path: Path, make_dataset) -> None:
    """A write the OS refuses is one message naming the path (not a traceback)."""
    import json
    import os
    import shutil

    rundir = tmp_path / "run"
    shutil.copytree(make_dataset([3, 3]), rundir / "replay")
    rows = [{"step": s, "env_steps": s, "eval/return": float(s)} for s in (3, 6)]
    (rundir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (rundir / "recipe.yaml").write_text("method: dreamer\nseed: 0\ntarget: {suite: fake, task: reach}\n")
    if os.geteuid() == 0:
        out = Path("/sys/xfer-test-export")  # root ignores permissions; sysfs refuses mkdir
    else:
        (tmp_path / "locked").mkdir(mode=0o500)
        out = tmp_path / "locked" / "d"
    result = runner.invoke(data_app, ["export-replay", str(rundir), "--out", str(out)])
    assert isinstance(result.exception, XferError), result.exception
    assert f"while writing {out}" in result.exception.message


def test_a_manifest_without_its_spaces_is_one_named_error(make_dataset) -> None:
    import json

    path = make_dataset([3])
    meta = json.loads((path / "dataset.json").read_text())
    del meta["action"]
    meta["observation"] = {}
    (path / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(XferError) as info:
        Dataset.open(path)
    assert "'observation' needs an 'image' or 'state'" in info.value.message
    assert "'action' needs an integer 'size'" in info.value.message
