"""``xfer data`` through typer's CliRunner on the sub-app: info, collect, export/import, export-replay."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from xfer.data.cli import data_app, env_settings_from
from xfer.data.dataset import Dataset, read_manifest
from xfer.data.episode import write_episode
from xfer.errors import XferError

runner = CliRunner()


def test_info_prints_a_table_of_the_dataset(make_dataset) -> None:
    path = make_dataset([4, 6, 8])
    result = runner.invoke(data_app, ["info", str(path)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    out = result.output
    for expected in ("fake / reach", "episodes", "18", "4 / 6.0 / 8", "return mean ± std", "100%",
                     "8x8x3 uint8", "3 float32", "2 continuous", "random"):
        assert expected in out, expected
    mean = np.mean([sum(t / 10 for t in range(1, n + 1)) for n in (4, 6, 8)])
    assert f"{mean:.2f} ±" in out


def test_info_verify_reports_a_corrupt_file(make_dataset) -> None:
    path = make_dataset([3, 3])
    victim = sorted(path.glob("ep*.npz"))[0]
    victim.write_bytes(victim.read_bytes()[:-30])
    result = runner.invoke(data_app, ["info", str(path), "--verify"], env={"COLUMNS": "200"})
    assert isinstance(result.exception, XferError)
    assert "1 of 2 episode files are corrupt" in result.exception.message
    assert victim.name in result.output


def test_info_of_a_non_dataset_raises_the_named_error(tmp_path: Path) -> None:
    result = runner.invoke(data_app, ["info", str(tmp_path)])
    assert isinstance(result.exception, XferError) and "no dataset.json" in result.exception.message


def test_collect_command(tmp_path: Path, registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("xfer.plugins.get_registry", lambda: registry)
    out = tmp_path / "d"
    result = runner.invoke(data_app, ["collect", "--suite", "fake", "--task", "reach", "--policy", "random",
                                      "--episodes", "2", "--out", str(out), "--seed", "5",
                                      "--set", "env.image_size=12", "--no-progress"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    meta = read_manifest(out)
    assert meta["episodes"] == 2 and meta["seed"] == 5
    assert meta["observation"]["image"]["shape"] == [12, 12, 3]
    assert "fake / reach" in result.output


def test_set_option_errors_name_the_key() -> None:
    assert env_settings_from(["env.action_repeat=2", "env.options.camera_id=3"]).options == {"camera_id": 3}
    with pytest.raises(XferError, match="--set env.image_size: .*integer.*found 'big'"):
        env_settings_from(["env.image_size=big"])
    with pytest.raises(XferError, match="only env"):
        env_settings_from(["seed=3"])


def test_export_and_import_commands(tmp_path: Path, make_dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("h5py")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    path = make_dataset([3, 4])
    result = runner.invoke(data_app, ["export", "--format", "minari", str(path), "--id", "cli-test-v0"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(data_app, ["import", "--format", "minari", "cli-test-v0",
                                      "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert Dataset.open(tmp_path / "b").meta["steps"] == 7


def _fake_run(rundir: Path, episode, lengths: list[int], curve: list[tuple[int, float]]) -> None:
    for index, length in enumerate(lengths):
        write_episode(rundir / "replay", index, episode(length + 1, seed=index, episode_id=index))
    lines = [{"step": s, "env_steps": s, "train/loss": 0.1} for s in range(0, 100, 7)]
    lines += [{"step": s, "env_steps": s, "eval/return": r} for s, r in curve]
    (rundir / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"half')
    (rundir / "recipe.yaml").write_text("method: dreamer\nseed: 7\ntarget: {suite: fake, task: reach}\n")


def test_export_replay_stops_where_the_eval_return_reached_the_threshold(tmp_path: Path, episode) -> None:
    rundir = tmp_path / "run"
    _fake_run(rundir, episode, [10] * 6, [(10, 1.0), (20, 3.0), (35, 6.0), (50, 9.0)])
    # best 9 -> a third is 3, first reached at env step 20: episodes ending at 10 and 20
    result = runner.invoke(data_app, ["export-replay", str(rundir), "--out", str(tmp_path / "mr"),
                                      "--fraction", "0.3333"])
    assert result.exit_code == 0, result.output
    meta = read_manifest(tmp_path / "mr")
    assert meta["episodes"] == 2 and meta["replay"]["until_env_step"] == 20
    assert (meta["suite"], meta["task"], meta["seed"]) == ("fake", "reach", 7)
    kept = Dataset.open(tmp_path / "mr")
    assert [ep["state"][0, 0] for ep in kept] == [0, 1]
    result = runner.invoke(data_app, ["export-replay", str(rundir), "--out", str(tmp_path / "me"),
                                      "--fraction", "1"])
    assert read_manifest(tmp_path / "me")["episodes"] == 5  # best reached at 50
    result = runner.invoke(data_app, ["export-replay", str(rundir), "--out", str(tmp_path / "x"),
                                      "--until-return", "7", "--steps-per-transition", "2"])
    assert read_manifest(tmp_path / "x")["episodes"] == 2  # 50 env steps = 25 stored steps
    result = runner.invoke(data_app, ["export-replay", str(rundir), "--out", str(tmp_path / "y"),
                                      "--until-return", "100"])
    assert isinstance(result.exception, XferError) and "never reached 100" in result.exception.message
    result = runner.invoke(data_app, ["export-replay", str(rundir), "--out", str(tmp_path / "all")])
    assert read_manifest(tmp_path / "all")["episodes"] == 6


def test_export_replay_counts_the_runs_action_repeat_by_default(tmp_path: Path, episode) -> None:
    """xfer runs count env_steps in simulator steps: a run at action repeat 2 that reached the threshold at
    env step 20 had stored 10 steps, i.e. one 10-step episode (not two)."""
    rundir = tmp_path / "run"
    _fake_run(rundir, episode, [10] * 6, [(10, 1.0), (20, 3.0), (50, 9.0)])
    (rundir / "recipe.yaml").write_text("method: dreamer\nseed: 7\ntarget: {suite: fake, task: reach}\n"
                                        "env: {action_repeat: 2}\n")
    result = runner.invoke(data_app, ["export-replay", str(rundir), "--out", str(tmp_path / "mr"),
                                      "--fraction", "0.3333"])
    assert result.exit_code == 0, result.output
    meta = read_manifest(tmp_path / "mr")
    assert meta["episodes"] == 1 and meta["replay"]["steps_per_transition"] == 2
    (rundir / "recipe.yaml").write_text("method: dreamer\ntarget: {suite: dmc, task: walker-walk}\n")
    result = runner.invoke(data_app, ["export-replay", str(rundir), "--out", str(tmp_path / "dmc"),
                                      "--fraction", "0.3333"])
    assert read_manifest(tmp_path / "dmc")["replay"]["steps_per_transition"] == 2  # DMC's default repeat


def test_missing_minari_is_a_missing_dependency(make_dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from xfer.errors import MissingDependency

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "minari" else real(name, *a))
    result = runner.invoke(data_app, ["export", "--format", "minari", str(make_dataset([2])), "--id", "x-v0"])
    assert isinstance(result.exception, MissingDependency)
    assert "'minari'" in result.exception.message and "xfer[minari]" in (result.exception.hint or "")


def test_export_replay_of_an_efficientzero_run_refuses_a_dreamer_only_option(tmp_path: Path) -> None:
    rundir = tmp_path / "ez"
    (rundir / "checkpoints").mkdir(parents=True)
    (rundir / "replay-0000000010").mkdir()  # where an efficientzero run saves its replay
    result = runner.invoke(data_app, ["export-replay", str(rundir), "--out", str(tmp_path / "d"),
                                      "--steps-per-transition", "2"])
    assert isinstance(result.exception, XferError) and "--steps-per-transition" in result.exception.message
    assert not (tmp_path / "d").exists()
