"""Collection: deterministic per-episode seeds, parallel workers, resume after a crash, policies, real DMC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xfer.data.collect as collect_module
from xfer.data.collect import collect
from xfer.data.dataset import Dataset, read_manifest
from xfer.data.episode import episode_files
from xfer.envs.settings import EnvSettings
from xfer.errors import XferError


def _same_datasets(a: Path, b: Path) -> None:
    left, right = Dataset.open(a), Dataset.open(b)
    assert [f.name for f in left.files] == [f.name for f in right.files]
    for x, y in zip(left, right, strict=True):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def test_collect_writes_a_dataset_independent_of_worker_count(tmp_path: Path, registry) -> None:
    one = collect("fake", "reach", EnvSettings(), "random", 4, tmp_path / "one", seed=3, workers=1,
                  progress=False, registry=registry)
    two = collect("fake", "reach", EnvSettings(), "random", 4, tmp_path / "two", seed=3, workers=2,
                  progress=False, registry=registry)
    _same_datasets(one, two)
    meta = read_manifest(one)
    assert meta["episodes"] == 4 and meta["steps"] == 40 and meta["length"]["max"] == 10
    assert (meta["suite"], meta["task"], meta["policy"], meta["seed"]) == ("fake", "reach", "random", 3)
    assert meta["success_defined"] is True and meta["env"]["image_size"] == 16
    assert meta["observation"]["state"]["shape"] == [4] and meta["action"]["size"] == 2
    episode = Dataset.open(one).episode(0)
    assert episode["is_first"][0] and episode["is_last"][-1] and (episode["action"][0] == 0).all()
    other = collect("fake", "reach", EnvSettings(), "random", 1, tmp_path / "other", seed=4, progress=False,
                    registry=registry)
    assert not np.array_equal(Dataset.open(other).episode(0)["action"], episode["action"])


def test_interrupted_collection_resumes_to_the_same_dataset(tmp_path: Path, registry,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    reference = collect("fake", "reach", EnvSettings(), "random", 4, tmp_path / "ref", seed=0,
                        progress=False, registry=registry)
    real_write = collect_module.write_episode
    calls = []

    def crash_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_write(*args, **kwargs)

    monkeypatch.setattr(collect_module, "write_episode", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        collect("fake", "reach", EnvSettings(), "random", 4, tmp_path / "cut", seed=0, progress=False,
                registry=registry)
    assert len(episode_files(tmp_path / "cut")) == 2
    with pytest.raises(XferError, match="incomplete"):
        Dataset.open(tmp_path / "cut")
    monkeypatch.setattr(collect_module, "write_episode", real_write)
    collect("fake", "reach", EnvSettings(), "random", 4, tmp_path / "cut", seed=0, progress=False,
            registry=registry)
    _same_datasets(reference, tmp_path / "cut")


def test_collect_refuses_a_directory_of_another_collection(tmp_path: Path, registry) -> None:
    collect("fake", "reach", EnvSettings(), "random", 1, tmp_path / "d", seed=0, progress=False,
            registry=registry)
    with pytest.raises(XferError, match="seed: expected 1, found 0"):
        collect("fake", "reach", EnvSettings(), "random", 1, tmp_path / "d", seed=1, progress=False,
                registry=registry)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("x")
    with pytest.raises(XferError, match="not empty"):
        collect("fake", "reach", EnvSettings(), "random", 1, tmp_path / "junk", progress=False,
                registry=registry)


def test_unknown_policy_and_task_are_named(tmp_path: Path, registry) -> None:
    with pytest.raises(XferError, match="no collection policy 'randm' \\(did you mean 'random'\\?\\)"):
        collect("fake", "reach", EnvSettings(), "randm", 1, tmp_path / "d", progress=False, registry=registry)
    with pytest.raises(XferError, match="no task 'rech'"):
        collect("fake", "rech", EnvSettings(), "random", 1, tmp_path / "d", progress=False, registry=registry)
    with pytest.raises(XferError, match="not a run directory"):
        collect("fake", "reach", EnvSettings(), f"checkpoint:{tmp_path}", 1, tmp_path / "d", progress=False,
                registry=registry)


def test_checkpoint_policy_collects_with_a_trained_agent(tmp_path: Path, registry) -> None:
    from xfer.testing import smoke_run

    rundir = smoke_run("fake-linear", {"steps": 10}, tmp_path)
    out = collect("fake", "reach", EnvSettings(), f"checkpoint:{rundir}", 2, tmp_path / "d", progress=False,
                  registry=registry)
    meta = read_manifest(out)
    assert meta["episodes"] == 2 and meta["policy"] == f"checkpoint:{rundir}"
    actions = Dataset.open(out).episode(0)["action"][1:]
    assert np.abs(actions).max() <= 1.0 and np.abs(actions).sum() > 0


def test_checkpoint_file_policy_collects_with_that_checkpoint(tmp_path: Path, registry) -> None:
    """checkpoint:RUNDIR/checkpoints/<file> acts with that (earlier) agent, not the run's newest one."""
    from xfer.testing import smoke_run

    rundir = smoke_run("fake-linear", {"steps": 60}, tmp_path,
                       steps_override={"checkpoint": {"every": 5, "keep": 10}})
    files = sorted((rundir / "checkpoints").iterdir())
    assert len(files) >= 2
    actions = {}
    for name, policy in (("newest", f"checkpoint:{rundir}"), ("first", f"checkpoint:{files[0]}")):
        out = collect("fake", "reach", EnvSettings(), policy, 1, tmp_path / name, progress=False,
                      registry=registry)
        assert read_manifest(out)["policy"] == policy
        actions[name] = Dataset.open(out).episode(0)["action"][1:]
    assert not np.allclose(actions["newest"], actions["first"])
    with pytest.raises(XferError, match="is not in a run's checkpoints/ folder"):
        stray = tmp_path / "stray.pt"
        stray.write_bytes(files[0].read_bytes())
        collect("fake", "reach", EnvSettings(), f"checkpoint:{stray}", 1, tmp_path / "x", progress=False,
                registry=registry)


def test_collect_on_real_dmc_cartpole(tmp_path: Path) -> None:
    pytest.importorskip("dm_control")
    from xfer.plugins import get_registry

    if "dmc" not in get_registry().suites:
        pytest.skip("the dmc suite plugin is not installed")
    out = collect("dmc", "cartpole-balance", EnvSettings(time_limit=40), "random", 2, tmp_path / "dmc",
                  seed=0, workers=2, progress=False)
    dataset = Dataset.open(out)
    assert dataset.image_shape == (64, 64, 3) and dataset.action_size == 1 and not dataset.discrete
    assert dataset.meta["episodes"] == 2 and dataset.meta["length"]["max"] == 20  # action repeat 2
    episode = dataset.episode(1)
    assert episode["image"].std() > 5  # a rendered scene, not a blank frame
    assert episode["reward"][1:].sum() > 0 and episode["reward"][0] == 0


def test_progress_off_a_terminal_is_complete_plain_lines(tmp_path: Path, registry, capsys) -> None:
    collect("fake", "reach", EnvSettings(), "random", 3, tmp_path / "plain", seed=0, progress=True,
            registry=registry)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    # a rich bar off a terminal was one line cut to 80 columns: "collecting fake/reach (r… epi… last: 10 st…"
    assert lines and lines[-1].startswith("collecting fake/reach") and "…" not in "".join(lines)
    assert "3/3 episodes" in lines[-1] and "last: 10 steps, return" in lines[-1]
