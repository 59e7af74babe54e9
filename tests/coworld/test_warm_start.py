"""``coworld.source_init_from``: a source warmed up by a finished dreamer run (real DMC simulators, tiny
sizes): its agent's tensors and replay episodes are taken over, the run takes no warm-up steps of its own,
and runs of another task or size are refused in one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from xfer_plugins.coworld.agents import build_agent
from xfer_plugins.coworld.warm_start import load_source_weights

from xfer.data.episode import episode_files
from xfer.dreamer.config import DreamerConfig
from xfer.errors import XferError
from xfer.run.checkpoint import Checkpointer
from xfer.run.logger import read_metrics
from xfer.run.runner import resume_run, run_status, start_run

from .tiny import RECIPES, tiny_overrides

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("dm_control")

ENV = ("env.time_limit=10", "env.action_repeat=2")
SOURCE_DREAMER = [
    "device=cpu", "eval.episodes=1", "eval.every=1000", "checkpoint.every=1000", "logging.live=false",
    "target.task=cartpole-balance", "dreamer.model.preset=tiny", "dreamer.model.horizon=3",
    "dreamer.train.env_steps=40", "dreamer.train.prefill=20", "dreamer.train.pretrain=1",
    "dreamer.train.train_every=10", "dreamer.train.batch=2", "dreamer.train.seq_len=4", "name=source",
]


@pytest.fixture(scope="module")
def source_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("warm")
    rundir = start_run(RECIPES / "dreamer_pixels_swingup_cpu.yaml",
                       [*SOURCE_DREAMER, *ENV, f"logdir={work / 'runs'}", f"datadir={work / 'data'}"])
    assert run_status(rundir)["status"] == "done"
    return rundir


def coworld_overrides(tmp_path: Path, source_run: Path, *extra: str) -> list[str]:
    return tiny_overrides(tmp_path, extra=(
        *ENV, "sources.0.task=cartpole-balance", "target.task=cartpole-swingup",
        f"coworld.source_init_from=[{source_run}]", *extra))


def test_source_starts_from_the_run_skips_its_warm_up_and_resumes(tmp_path: Path, source_run: Path) -> None:
    rundir = start_run(RECIPES / "coworld_dmc.yaml", coworld_overrides(tmp_path, source_run), stop_at=10)
    assert run_status(rundir)["status"] == "stopped"
    resume_run(rundir)  # restores its own replay and agents; the source run is not read again
    assert run_status(rundir)["status"] == "done"
    found = Checkpointer(rundir / "checkpoints").load_latest()
    assert found is not None
    state = found[1]["method"]
    # no warm-up (20 steps) and no prefill (10) in this run: only (rounds - 1) x source_iterations (20) plus
    # train_every (5), rounded up to whole episodes (time limit 10 = 5 policy steps at repeat 2)
    assert state["replay"]["steps"] == [30]
    assert state["learner"]["counters"]["target_phases"] == 2
    evals = [row for row in read_metrics(rundir / "metrics.jsonl") if row.get("eval/return") is not None]
    assert evals and evals[-1]["target_updates"] == 4  # evaluations carry the target's update count
    theirs = episode_files(source_run / "replay")
    mine = {path.name: path for path in episode_files(rundir / "replay" / "0-cartpole-balance")}
    assert theirs and all(path.name in mine for path in theirs)
    assert all(mine[path.name].read_bytes() == path.read_bytes() for path in theirs)
    assert len(mine) == len(theirs) + 3, "its own 30 steps are 3 more episodes"


def test_weights_are_the_runs(source_run: Path) -> None:
    model = DreamerConfig.model_validate({"preset": "tiny", "horizon": 3})
    agent = build_agent({"image": [64, 64, 3]}, 1, model, "cpu", native=1)
    assert load_source_weights(agent, source_run) == 40
    saved = Checkpointer(source_run / "checkpoints").load_latest()
    assert saved is not None
    world_model = saved[1]["method"]["learner"]["world_model"]
    for key, tensor in agent.world_model.state_dict().items():
        assert torch.equal(tensor, world_model[key]), key
    other = build_agent({"image": [64, 64, 3]}, 1, model.model_copy(update={"deter": 40}), "cpu", native=1)
    with pytest.raises(XferError, match="does not fit this source agent"):
        load_source_weights(other, source_run)


@pytest.mark.parametrize(("extra", "message"), [
    (("sources.0.task=cartpole-two-poles",), "trained on dmc/cartpole-balance, the source here is "
                                             "dmc/cartpole-two-poles"),
    (("env.action_repeat=4",), "ran with env.action_repeat 2, this recipe's source has 4"),
])
def test_another_task_or_setting_is_refused(tmp_path: Path, source_run: Path, extra: tuple[str, ...],
                                            message: str) -> None:
    with pytest.raises(XferError, match=message):
        start_run(RECIPES / "coworld_dmc.yaml", coworld_overrides(tmp_path, source_run, *extra))
