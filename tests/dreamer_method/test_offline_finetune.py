"""mode: offline (Offline DV2 with the disagreement penalty) and mode: finetune, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dreamer_helpers import (
    TINY_OFFLINE,
    TINY_TRAIN,
    assert_same_learner,
    latest,
    offline_target,
    write_recipe,
)
from pydantic import ValidationError
from rich.console import Console
from xfer_plugins.dreamer.config import DreamerMethodConfig

from xfer.errors import XferError
from xfer.run.evaluate import evaluate_run
from xfer.run.runner import resume_run, start_run

OFFLINE = {"mode": "offline", "model": {"preset": "tiny", "ensemble_size": 2}, "train": TINY_OFFLINE}
OFFLINE_TOP = {"target": offline_target(), "eval": {"every": 4, "episodes": 1, "video": False},
               "checkpoint": {"every": 2, "keep": 2},
               "logging": {"every": 2, "tensorboard": False, "live": False}}


@pytest.fixture(scope="package")
def offline_run(workdir: Path) -> Path:
    return start_run(write_recipe(workdir, "offline", OFFLINE, **OFFLINE_TOP))


def test_offline_trains_from_a_collected_dataset_with_the_penalty(offline_run: Path) -> None:
    state = latest(offline_run)
    assert state["step"] == 6 and state["method"]["learner"]["updates"] == 6
    assert any(key.startswith("ensemble.") for key in state["method"]["learner"]["world_model"])
    assert not (offline_run / "replay").exists()  # the dataset is read in place, never copied
    rows = [json.loads(line) for line in (offline_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval/return" in r] == [4, 6]
    assert any("wm/ensemble_loss" in r for r in rows)
    # an offline loop takes no environment steps: no env_steps counter, so TensorBoard plots it against
    # its update count instead of stacking every point at env_steps 0
    assert all("env_steps" not in r and r["updates"] == r["step"] for r in rows if "wm/ensemble_loss" in r
               or "eval/return" in r)
    result = evaluate_run(offline_run, 1, None, False, 0, "cpu", Console(quiet=True))
    assert result["eval/return"] > 0


def test_offline_dv2_logs_its_critic_against_the_true_returns(offline_run: Path) -> None:
    """CoWorld's Fig. 5b compares its critic with Offline DV2's: the same value/* metrics and per-step
    curves, named by the loop's step, with the dreamer's own discount."""
    rows = [json.loads(line) for line in (offline_run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/return" in r]
    keys = {"value/estimate", "value/true_return", "value/bias", "value/cumulative"}
    assert all(keys <= set(r) for r in evals)
    assert all("value/source_estimate" not in r for r in evals)  # no source critic here
    files = sorted(p.name for p in (offline_run / "value_curves").glob("eval_*.json"))
    assert files == ["eval_000000004.json", "eval_000000006.json"]
    saved = json.loads((offline_run / "value_curves" / files[-1]).read_text())
    episode = saved["episodes"][0]
    assert saved["step"] == 6 and saved["gamma"] == pytest.approx(0.99)
    assert len(episode["value"]) == len(episode["true_return"]) > 0 and episode["source_value"] == []
    errors = [v - g for v, g in zip(episode["value"], episode["true_return"], strict=True)]
    assert evals[-1]["value/bias"] == pytest.approx(sum(errors) / len(errors))


def test_offline_stop_and_resume_equals_uninterrupted(workdir: Path, offline_run: Path) -> None:
    rundir = start_run(write_recipe(workdir, "offline-resumed", OFFLINE, **OFFLINE_TOP), stop_at=3)
    assert latest(rundir)["step"] == 3
    resume_run(rundir)
    assert_same_learner(latest(offline_run), latest(rundir))


def test_offline_without_a_dataset_is_refused(workdir: Path) -> None:
    top = {**OFFLINE_TOP, "target": offline_target(None)}
    recipe = write_recipe(workdir, "offline-nodata", OFFLINE, **top)
    with pytest.raises(XferError, match="offline training needs a dataset"):
        start_run(recipe)


def test_finetune_online_loads_every_tensor_of_the_online_run(workdir: Path, online_run: Path) -> None:
    train = {**TINY_TRAIN, "env_steps": 200}
    config = {"mode": "finetune", "init_from": str(online_run), "finetune_on": "online", "train": train}
    rundir = start_run(write_recipe(workdir, "finetune", config), stop_at=100)
    report = json.loads((rundir / "finetune_load.json").read_text())
    assert report["loaded"] and not report["skipped"] and not report["new"]
    resume_run(rundir)  # a resumed finetune run continues from its own checkpoint, not from init_from again
    assert json.loads((rundir / "run.json").read_text())["status"] == "done"
    assert latest(rundir)["step"] == 200


def test_finetune_offline_reports_new_ensemble_tensors(workdir: Path, online_run: Path) -> None:
    config = {**OFFLINE, "mode": "finetune", "init_from": str(online_run), "finetune_on": "offline"}
    rundir = start_run(write_recipe(workdir, "finetune-offline", config, **OFFLINE_TOP))
    report = json.loads((rundir / "finetune_load.json").read_text())
    assert report["new"] and all(".ensemble." in name for name in report["new"])
    assert latest(rundir)["method"]["learner"]["updates"] == 6


def test_finetune_from_other_shapes_is_refused(workdir: Path, online_run: Path) -> None:
    config = {"mode": "finetune", "init_from": str(online_run), "model": {"preset": "tiny", "deter": 48},
              "train": TINY_TRAIN}
    with pytest.raises(XferError, match="do not fit this agent's shapes"):
        start_run(write_recipe(workdir, "finetune-misfit", config))


def test_finetune_needs_init_from() -> None:
    with pytest.raises(ValidationError, match="needs init_from"):
        DreamerMethodConfig(mode="finetune")
    with pytest.raises(ValidationError, match="only used with mode 'finetune'"):
        DreamerMethodConfig(mode="online", init_from="runs/x")
