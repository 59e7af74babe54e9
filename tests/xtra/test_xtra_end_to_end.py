"""End to end on real ALE games with tiny networks: pretrain teachers → distil → finetune → evaluate,
exact resume across both stages, and the ``efficientzero`` baseline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from rich.console import Console
from typer.testing import CliRunner

from xfer.data.cli import data_app
from xfer.data.dataset import Dataset, read_manifest
from xfer.errors import XferError
from xfer.run.checkpoint import Checkpointer
from xfer.run.evaluate import evaluate_run
from xfer.run.logger import read_metrics
from xfer.run.runner import resume_run, start_run

pytest.importorskip("ale_py")

MODEL = {"preset": "tiny", "min_replay_size": 16, "training_steps": 8, "batch_size": 4,
         "num_simulations": 2, "channels": 4, "reduced_channels": 2}
SELFPLAY = {"env_steps": 24, "num_envs": 2, "eval_envs": 1, "segment_length": 8}


def _recipe(tmp_path: Path, method: str, name: str, section: dict[str, Any], sources: bool = False) -> Path:
    recipe: dict[str, Any] = {
        "method": method, "name": name, "device": "cpu", "seed": 1, "logdir": str(tmp_path / "runs"),
        "datadir": str(tmp_path / "data"), "target": {"suite": "atari", "task": "demon-attack"},
        "env": {"image_size": 32, "time_limit": 160},
        "eval": {"every": 1000, "episodes": 1, "video": method == "efficientzero"},
        "checkpoint": {"every": 5}, "perf": {"threads": 1},
        "logging": {"every": 4, "tensorboard": False, "live": False},
        method: section,
    }
    if sources:
        recipe["sources"] = [{"suite": "atari", "task": game, "dataset": {"collect": {"policy": "random",
                                                                                     "episodes": 1}}}
                             for game in ("carnival", "phoenix")]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _final(rundir: Path) -> dict[str, Any]:
    found = Checkpointer(rundir / "checkpoints").load_latest()
    assert found is not None
    return found[1]["method"]


def _same(a: Any, b: Any) -> bool:
    """Equal states, wall-clock ``phase_seconds`` aside (present on both sides)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a if k != "phase_seconds")
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


XTRA = {"model": MODEL, "selfplay": SELFPLAY, "finetune": {"task_weights": {"cycle": 2, "count_steps": 2,
                                                                           "warmup": 0}},
        "stage1": {"teacher_steps": 2, "distill_steps": 2, "log_every": 1}}


def _timeless(rundir: Path) -> list[dict]:
    """A run's metrics without the wall-clock ``perf/`` entries (they differ between any two runs)."""
    return [{k: v for k, v in row.items() if not k.startswith("perf/")}
            for row in read_metrics(rundir / "metrics.jsonl")]


def test_xtra_pretrain_distil_finetune_evaluate(tmp_path: Path, registry) -> None:
    full = start_run(_recipe(tmp_path, "xtra", "xtra", XTRA, sources=True), registry=registry)
    assert json.loads((full / "run.json").read_text())["status"] == "done"
    rows = read_metrics(full / "metrics.jsonl")
    keys = set().union(*rows)
    assert {"xtra/teacher/carnival/total", "xtra/teacher/phoenix/total", "xtra/student/total"} <= keys
    assert {"xtra/eta/carnival", "xtra/eta/phoenix", "xtra/cos/phoenix", "eval/return"} <= keys
    zero_shot = [r for r in rows if r.get("env_steps") == 0 and "eval/return" in r]
    assert len(zero_shot) == 1 and zero_shot[0]["step"] == 2 * 2 + 2  # the student, before finetuning
    result = evaluate_run(full, episodes=1, video=None, explore=False, seed=0, device="cpu",
                          console=Console(quiet=True))
    assert np.isfinite(result["eval/return"])


def test_stored_offline_targets_are_refused_before_stage_1_without_search_policies(tmp_path: Path,
                                                                                 registry) -> None:
    section = {**XTRA, "finetune": {**XTRA["finetune"], "offline_targets": "stored"}}
    path = _recipe(tmp_path, "xtra", "stored-random", section, sources=True)  # random-policy datasets
    with pytest.raises(XferError, match="stores no search policies"):
        start_run(path, registry=registry)
    assert not list((tmp_path / "runs").glob("*/*/checkpoints/*"))  # refused before any training


def test_xtra_resume_is_exact_across_stages(tmp_path: Path, registry) -> None:
    """Stop inside teacher 2, inside distillation and inside Stage 2, then finish: identical to a run
    without interruptions."""
    path = _recipe(tmp_path, "xtra", "xtra", XTRA, sources=True)
    full = start_run(path, registry=registry)
    part = start_run(path, registry=registry, stop_at=3)
    for stop in (5, 6 + 12):
        resume_run(part, registry=registry, stop_at=stop)
    resume_run(part, registry=registry)
    assert _same(_final(full), _final(part))
    assert _timeless(full) == _timeless(part)


def test_xtra_stage2_with_workers_resumes_exactly(tmp_path: Path, registry) -> None:
    """Stage 2's joint batches (target + two offline games) built by a worker process and its self-play in
    another; stopped inside Stage 2, the jobs in flight are stored and the resumed run is identical."""
    finetune = {**XTRA["finetune"], "reanalyse_workers": 1}
    selfplay = {**SELFPLAY, "workers": 1, "worker_steps": 3}
    path = _recipe(tmp_path, "xtra", "xtra", {**XTRA, "finetune": finetune, "selfplay": selfplay},
                   sources=True)
    full = start_run(path, registry=registry)
    part = start_run(path, registry=registry, stop_at=6 + 12)
    resume_run(part, registry=registry)
    assert len(_final(full)["batch_workers"]["jobs"][0]) == 3  # one job: the target's and two games' batches
    assert _same(_final(full), _final(part))
    assert _timeless(full) == _timeless(part)


def test_xtra_stage2_from_a_pretrained_student_without_cross_task(tmp_path: Path, registry) -> None:
    pre = start_run(_recipe(tmp_path, "xtra", "pre", {**XTRA, "pretrain_only": True}, sources=True),
                    registry=registry)
    student = _final(pre)["student"]
    section = {**XTRA, "pretrained": str(pre), "finetune": {"cross_task": False}, "zero_shot_eval": False}
    run = start_run(_recipe(tmp_path, "xtra", "plain-finetune", section), registry=registry)
    rows = read_metrics(run / "metrics.jsonl")
    assert not any(k.startswith("xtra/") for r in rows for k in r)  # no offline games, no task weights
    assert rows[0]["step"] > 0 and _final(run)["counters"][0] == SELFPLAY["env_steps"]
    assert not _same(student["net"], _final(run)["learner"]["net"])  # finetuned from the student


def test_efficientzero_runs_end_to_end(tmp_path: Path, registry) -> None:
    section = {"model": MODEL, "selfplay": SELFPLAY, "eval_at_start": True}
    rundir = start_run(_recipe(tmp_path, "efficientzero", "ez", section), registry=registry)
    rows = read_metrics(rundir / "metrics.jsonl")
    assert [r["env_steps"] for r in rows if "eval/return" in r] == [0, 24]
    assert any("train/total" in r for r in rows)
    timed = [r for r in rows if "perf/train_s" in r]  # where the time went, cumulative, checkpointed
    assert timed and {"perf/selfplay_s", "perf/eval_s"} <= set(timed[-1]) and timed[-1]["perf/train_s"] > 0
    assert _final(rundir)["phase_seconds"]["train"] == pytest.approx(timed[-1]["perf/train_s"], rel=0.5)
    assert _final(rundir)["learner"]["train_step"] == MODEL["training_steps"]
    assert (rundir / "eval.mp4").stat().st_size > 0
    result = evaluate_run(rundir, episodes=1, video=None, explore=False, seed=0, device="cpu",
                          console=Console(quiet=True))
    assert np.isfinite(result["eval/return"])
    # its replay, with the search's visit distributions, as an offline dataset for offline_targets: stored
    result = CliRunner().invoke(data_app, ["export-replay", str(rundir), "--out", str(tmp_path / "searched")])
    assert result.exit_code == 0, result.output
    meta = read_manifest(tmp_path / "searched")
    assert (meta["suite"], meta["task"]) == ("atari", "demon-attack")
    assert meta["steps"] == 16  # the finished self-play segments: 2 environments x one segment of 8 steps
    episode = next(iter(Dataset.open(tmp_path / "searched")))
    assert episode["image"].shape[1:] == (32, 32, 12)  # 4 stacked RGB frames
    searched = episode["search_policy"][:-1]
    assert np.allclose(searched.sum(-1), 1.0) and (searched.max(-1) < 1.0).any()  # visits, not one-hot
    section = {**XTRA, "pretrain": False, "zero_shot_eval": False,
               "finetune": {"offline_targets": "stored", "task_weights": {"cycle": 2, "count_steps": 2,
                                                                          "warmup": 0}}}
    path = _recipe(tmp_path, "xtra", "stored", section)
    recipe = yaml.safe_load(path.read_text())
    dataset = {"path": str(tmp_path / "searched")}
    recipe["sources"] = [{"suite": "atari", "task": "demon-attack", "dataset": dataset}]
    path.write_text(yaml.safe_dump(recipe))
    stored = start_run(path, registry=registry)
    assert json.loads((stored / "run.json").read_text())["status"] == "done"
    assert "xtra/offline/demon-attack/total" in set().union(*read_metrics(stored / "metrics.jsonl"))


@pytest.mark.parametrize(("workers", "players"), [(0, 0), (1, 0), (0, 2), (1, 1)],
                         ids=["in-process", "reanalyse-worker", "selfplay-workers", "both"])
def test_efficientzero_resume_is_exact(tmp_path: Path, registry, workers: int, players: int) -> None:
    """Also with a reanalyse worker (the batch in flight at the checkpoint is stored and trained on first)
    and with self-play workers (stopped between chunks, their environments restored by replay)."""
    selfplay = {**SELFPLAY, "workers": players, "worker_steps": 5}  # 5 agent steps x 2 envs a chunk
    section = {"model": MODEL, "selfplay": selfplay, "reanalyse_workers": workers}
    path = _recipe(tmp_path, "efficientzero", "ez", section)
    full = start_run(path, registry=registry)
    part = start_run(path, registry=registry, stop_at=12)
    resume_run(part, registry=registry)
    assert ("batch_workers" in _final(full)) == bool(workers)
    assert ("workers" in _final(part)["selfplay"]) == bool(players)
    assert _same(_final(full), _final(part))
    assert _timeless(full) == _timeless(part)


def test_a_checkpoint_without_selfplay_workers_refuses_to_resume_with_them(tmp_path: Path, registry) -> None:
    path = _recipe(tmp_path, "efficientzero", "ez", {"model": MODEL, "selfplay": SELFPLAY})
    part = start_run(path, registry=registry, stop_at=12)
    recipe = yaml.safe_load((part / "recipe.yaml").read_text())
    recipe["efficientzero"]["selfplay"]["workers"] = 1  # edited in the run's own recipe
    (part / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(XferError, match="written with selfplay.workers 0, the recipe now has 1"):
        resume_run(part, registry=registry)


def test_efficientzero_asked_to_stop_at_its_last_step_still_evaluates(tmp_path: Path, registry) -> None:
    """A stop due at the last agent step is the run's end: the final evaluation and checkpoint follow (a
    checkpoint taken there made the resumed run skip its final evaluation)."""
    path = _recipe(tmp_path, "efficientzero", "ez", {"model": MODEL, "selfplay": SELFPLAY})
    part = start_run(path, registry=registry, stop_at=SELFPLAY["env_steps"])
    assert json.loads((part / "run.json").read_text())["status"] == "done"
    assert [r["env_steps"] for r in read_metrics(part / "metrics.jsonl") if "eval/return" in r] == [24]


def test_xtra_fits_its_network_to_the_target_games_observations(tmp_path: Path, registry) -> None:
    """Gray Atari frames (``color: gray``) give the network one channel per frame, as `efficientzero` does,
    without the recipe saying ``image_channels``."""
    section = {**XTRA, "pretrain": False, "finetune": {"cross_task": False}, "zero_shot_eval": False}
    path = _recipe(tmp_path, "xtra", "gray", section)
    recipe = yaml.safe_load(path.read_text())
    recipe["env"]["options"] = {"color": "gray"}
    path.write_text(yaml.safe_dump(recipe))
    run = start_run(path, registry=registry)
    stem = next(v for k, v in _final(run)["learner"]["net"].items() if v.ndim == 4)
    assert stem.shape[1] == 4 * 1  # frame_stack 4 x one gray channel (RGB would be 12)
