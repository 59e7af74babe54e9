"""mode: online end to end on dmc cartpole-balance: finishes, checkpoints, resumes exactly, evaluates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from dreamer_helpers import TINY_TRAIN, assert_same_learner, latest, write_recipe
from rich.console import Console

from xfer.run.evaluate import evaluate_run
from xfer.run.logger import read_metrics
from xfer.run.runner import resume_run, start_run


def test_online_run_finishes_logs_and_checkpoints(online_run: Path) -> None:
    assert json.loads((online_run / "run.json").read_text())["status"] == "done"
    state = latest(online_run)
    assert state["step"] == 300 and state["method"]["loop"]["env_steps"] == 300
    # prefill 100 steps, then 2 pretrain updates and one update every 40 env steps: 2 + 200 // 40
    assert state["method"]["learner"]["updates"] == 7
    assert len(list((online_run / "replay").glob("ep*.npz"))) == 3  # 50 agent steps = 100 env steps each
    rows = read_metrics(online_run / "metrics.jsonl")
    assert [r["eval/return"] > 0 for r in rows if "eval/return" in r] == [True, True]
    assert any("wm/loss" in r and "perf/env_steps_per_s" in r for r in rows)
    assert list((online_run / "videos").glob("*.mp4"))


def test_stop_and_resume_equals_uninterrupted(workdir: Path, online_run: Path) -> None:
    recipe = write_recipe(workdir, "online-resumed", {"mode": "online", "train": TINY_TRAIN},
                          eval={"every": 200, "episodes": 1, "video": False})
    rundir = start_run(recipe, stop_at=150)
    stopped = latest(rundir)
    assert json.loads((rundir / "run.json").read_text())["status"] == "stopped"
    assert stopped["step"] == 200  # the episode in progress at step 150 ends at 200
    resume_run(rundir)
    assert json.loads((rundir / "run.json").read_text())["status"] == "done"
    assert_same_learner(latest(online_run), latest(rundir))
    keep = lambda rows: [{k: v for k, v in r.items() if not k.startswith("perf/")} for r in rows]  # noqa: E731
    assert keep(read_metrics(online_run / "metrics.jsonl")) == keep(read_metrics(rundir / "metrics.jsonl"))


def test_xfer_eval_reports_and_writes_video(online_run: Path, tmp_path: Path) -> None:
    video = tmp_path / "eval.mp4"
    result = evaluate_run(online_run, episodes=2, video=video, explore=False, seed=0, device="cpu",
                          console=Console(quiet=True))
    assert result["eval/episodes"] == 2 and result["eval/return"] > 0
    assert video.stat().st_size > 0
    import imageio.v2 as imageio

    frame = imageio.mimread(video)[0]
    assert frame.shape[1] == 2 * frame.shape[0]  # real frames next to the open-loop prediction


def test_state_only_run_without_rendering(workdir: Path, tmp_path: Path) -> None:
    """``env.pixels: false`` with ``inputs: [state]``: the replay holds states only, the run finishes
    (the requested video is skipped with a message), and ``xfer eval --video`` says why it cannot record.
    It samples with ``train.sampling: stream``."""
    import pytest

    from xfer.data.episode import episode_files, load_episode
    from xfer.dreamer.plan_rewards import run_plan_rewards
    from xfer.errors import XferError

    train = {**TINY_TRAIN, "sampling": "stream"}  # sequences across episode boundaries, end to end
    recipe = write_recipe(workdir, "state_only", {"mode": "online", "inputs": ["state"], "train": train},
                          env={"time_limit": 100, "state": True, "pixels": False},
                          eval={"every": 200, "episodes": 1, "video": True})
    rundir = start_run(recipe)
    assert json.loads((rundir / "run.json").read_text())["status"] == "done"
    assert not (rundir / "videos").exists()
    stored = load_episode(episode_files(rundir / "replay")[0])
    assert "image" not in stored and stored["state"].shape[1] == 5
    beliefs = run_plan_rewards(rundir, batches=1)  # the diagnostic reads the run's own observation keys
    assert {"actor", "low", "high", "zero", "random"} <= set(beliefs)
    assert all(np.isfinite(value) for value in beliefs.values())
    result = evaluate_run(rundir, episodes=1, video=None, explore=False, seed=0, device="cpu",
                          console=Console(quiet=True))
    assert result["eval/return"] > 0
    with pytest.raises(XferError, match="env.pixels: false"):
        evaluate_run(rundir, episodes=1, video=tmp_path / "v.mp4", explore=False, seed=0, device="cpu",
                     console=Console(quiet=True))
