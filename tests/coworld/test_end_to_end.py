"""CoWorld end to end at tiny sizes on real simulators: Meta-World → Meta-World (with stop and resume, and
``xfer eval``), DMC cross-dynamics, Meta-World → RoboDesk (4-d → 5-d actions), and multi-source selection."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from xfer.data.replay import ReplayBuffer
from xfer.run.checkpoint import Checkpointer
from xfer.run.evaluate import evaluate_run
from xfer.run.logger import read_metrics
from xfer.run.runner import resume_run, run_status, start_run

from .tiny import RECIPES, tiny_overrides

os.environ.setdefault("MUJOCO_GL", "egl")


def last_checkpoint(rundir: Path) -> dict:
    found = Checkpointer(rundir / "checkpoints").load_latest()
    assert found is not None
    return found[1]


def column(rows: list[dict], key: str) -> list[float]:
    return [row[key] for row in rows if row.get(key) is not None]


def check_coworld_metrics(rundir: Path) -> list[dict]:
    rows = read_metrics(rundir / "metrics.jsonl")
    for key in ("value/estimate", "value/true_return", "value/source_estimate",
                "coworld/constraint_active", "coworld/state_kl", "coworld/eta", "eval/return"):
        assert column(rows, key), f"{key} was not logged"
    eta = column(rows, "coworld/eta")
    assert max(eta) <= 1.0 and min(eta) < 1.0 and eta == sorted(eta, reverse=True), "η falls, never frozen"
    assert all(0.0 <= v <= 1.0 for v in column(rows, "coworld/constraint_active"))
    assert column(rows, "value/cumulative") and column(rows, "value/cumulative_true_return")
    curves = sorted((rundir / "value_curves").glob("eval_*.json"))
    assert curves, "the Fig. 5b curves are saved at every evaluation"
    episode = json.loads(curves[-1].read_text())["episodes"][0]
    assert len(episode["value"]) == len(episode["true_return"]) == len(episode["cumulative_value"]) > 0
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(rundir))
    return rows


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("coworld")


def test_metaworld_to_metaworld_stop_resume_and_eval(work: Path) -> None:
    pytest.importorskip("metaworld")
    overrides = tiny_overrides(work, extra=("coworld.eta.floor=0.1",))
    rundir = start_run(RECIPES / "coworld_metaworld.yaml", overrides, stop_at=20)
    assert run_status(rundir)["status"] == "stopped"
    stopped = last_checkpoint(rundir)["method"]["learner"]["counters"]
    assert stopped["target_phases"] == 1  # warm-up done (20 steps), first target phase run
    resume_run(rundir)
    assert run_status(rundir)["status"] == "done"
    final = last_checkpoint(rundir)["method"]
    assert final["learner"]["counters"] == {"target_phases": 2, "target_updates": 4, "round_robin": 0}
    assert final["replay"]["steps"] >= [45]
    rows = check_coworld_metrics(rundir)
    assert min(column(rows, "coworld/eta")) == pytest.approx(0.1, abs=0.2)
    result = evaluate_run(rundir, episodes=1, video=None, explore=False, seed=3, device="cpu",
                          console=Console(quiet=True))
    assert np.isfinite(result["eval/return"])


def test_dmc_cross_dynamics_walker_walk_to_downhill(work: Path) -> None:
    pytest.importorskip("dm_control")
    rundir = start_run(RECIPES / "coworld_dmc.yaml", tiny_overrides(work, time_limit=20))
    assert run_status(rundir)["status"] == "done"
    recipe = (rundir / "recipe.yaml").read_text()
    assert "walker-downhill" in recipe and "state_alignment_scale: 1.5" in recipe
    assert "reward_mix: 0.9" in recipe
    check_coworld_metrics(rundir)


def test_metaworld_to_robodesk_pads_actions(work: Path) -> None:
    pytest.importorskip("robodesk")
    rundir = start_run(RECIPES / "coworld_robodesk.yaml", tiny_overrides(work))
    assert run_status(rundir)["status"] == "done"
    meta = last_checkpoint(rundir)["method"]["meta"]
    assert meta["act_dim"] == 5 and meta["target_native"] == 5
    replay = ReplayBuffer(rundir / "replay" / "0-window-close", readonly=True)
    actions = replay.sample(4, 6, np.random.default_rng(0))["action"]
    assert actions.shape[-1] == 5 and np.all(actions[..., 4] == 0.0) and np.any(actions[..., :4] != 0)
    target_state = last_checkpoint(rundir)["method"]["learner"]["target"]["behavior"]
    tensors = [t for t in target_state.values() if isinstance(t, torch.Tensor) and t.dim() >= 1]
    assert any(t.shape[0] == 10 for t in tensors), "the actor outputs mean and std of 5 actions"
    check_coworld_metrics(rundir)
    result = evaluate_run(rundir, episodes=1, video=None, explore=False, seed=1, device="cpu",
                          console=Console(quiet=True))
    assert np.isfinite(result["eval/return"])


@pytest.mark.slow
def test_multi_source_selects_and_logs(work: Path) -> None:
    pytest.importorskip("metaworld")
    extra = ("sources=[{suite: metaworld, task: button-press}, {suite: metaworld, task: drawer-close}]",
             "coworld.target_pretrain_updates=2")
    rundir = start_run(RECIPES / "coworld_multisource.yaml", tiny_overrides(work, extra=extra))
    assert run_status(rundir)["status"] == "done"
    rows = read_metrics(rundir / "metrics.jsonl")
    selected = column(rows, "coworld/selected_source")
    assert selected and set(selected) <= {0.0, 1.0}
    assert column(rows, "coworld/select_kl/0-button-press")
    assert column(rows, "coworld/select_kl/1-drawer-close")
    shares = [row["coworld/selected/0-button-press"] + row["coworld/selected/1-drawer-close"]
              for row in rows if "coworld/selected/0-button-press" in row]
    assert shares and all(s == pytest.approx(1.0) for s in shares)
    final = last_checkpoint(rundir)["method"]
    assert all(steps >= 20 for steps in final["replay"]["steps"]), "every source is warmed up"
    assert sum(final["learner"]["selector"]["total"]) == 4
    assert json.loads((rundir / "run.json").read_text())["status"] == "done"


@pytest.mark.slow
def test_resume_is_exact(work: Path) -> None:
    pytest.importorskip("metaworld")
    overrides = tiny_overrides(work)
    whole = start_run(RECIPES / "coworld_metaworld.yaml", overrides)
    split = start_run(RECIPES / "coworld_metaworld.yaml", overrides, stop_at=30)
    resume_run(split)
    a, b = last_checkpoint(whole)["method"]["learner"], last_checkpoint(split)["method"]["learner"]
    for part in ("world_model", "behavior"):
        for key, value in a["target"][part].items():
            assert torch.equal(value, b["target"][part][key]), f"target {part}.{key} differs after resume"
    assert a["eta"] == b["eta"] and a["counters"] == b["counters"]
