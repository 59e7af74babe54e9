"""Nothing lost: unreadable checkpoints, two processes on one run, a full disk, a finished run, eval's choice.

Each test reproduces a defect of issue 12 with real files, real processes and real OS errors: a truncated
checkpoint, a second `xfer` process, writes into /dev/full (ENOSPC) or past RLIMIT_FSIZE (EFBIG).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from cli_process import quiet, said, start_xfer, wait_for, xfer

from xfer.errors import XferError
from xfer.run.checkpoint import Checkpointer
from xfer.run.lock import RunLock, lock_holder
from xfer.run.logger import read_metrics
from xfer.run.runner import resume_run, run_status, start_run
from xfer.sweep import Sweep, SweepRun, run_local


def recipe_file(tmp_path: Path, name: str, steps: int, **top: object) -> Path:
    recipe = {
        "method": "fake-linear", "name": name, "device": "cpu", "seed": 3, "logdir": str(tmp_path / "runs"),
        "target": {"suite": "fake", "task": "reach"},
        "checkpoint": {"every": 10, "keep": 2}, "logging": {"every": 1, "tensorboard": False, "live": False},
        "fake-linear": {"steps": steps}, **top,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


# ---- every checkpoint unreadable, rotation, no checkpoint yet --------------------------------------------
def test_all_checkpoints_unreadable_is_refused_and_nothing_changes(tmp_path: Path, registry) -> None:
    rundir = start_run(recipe_file(tmp_path, "broken", 40), registry=registry)
    metrics = (rundir / "metrics.jsonl").read_text()
    (rundir / "run.json").write_text(json.dumps({**run_status(rundir), "status": "failed"}))
    for path in (rundir / "checkpoints").glob("ckpt-*.pt"):
        path.write_bytes(path.read_bytes()[:100])
    before = {p.name: p.read_bytes() for p in (rundir / "checkpoints").iterdir()}
    with pytest.raises(XferError, match="no checkpoint of .* can be read: ") as caught:
        resume_run(rundir, registry=registry, console=quiet())
    assert "ckpt-0000000030.pt, ckpt-0000000040.pt" in caught.value.message
    assert caught.value.hint is not None and "--from-scratch" in caught.value.hint
    assert (rundir / "metrics.jsonl").read_text() == metrics
    assert {p.name: p.read_bytes() for p in (rundir / "checkpoints").iterdir()} == before


def test_from_scratch_moves_the_old_files_aside_and_reruns(tmp_path: Path, registry) -> None:
    full = start_run(recipe_file(tmp_path, "ref", 40), registry=registry)
    rundir = start_run(recipe_file(tmp_path, "again", 40), registry=registry)
    old_metrics = (rundir / "metrics.jsonl").read_text()
    for path in (rundir / "checkpoints").glob("ckpt-*.pt"):
        path.write_bytes(b"garbage")
    console = quiet()
    resume_run(rundir, registry=registry, console=console, from_scratch=True)
    (previous,) = rundir.glob("previous-*")
    assert "starting over from step 0" in said(console) and str(previous) in said(console)
    assert (previous / "metrics.jsonl").read_text() == old_metrics
    assert sorted(p.name for p in (previous / "checkpoints").iterdir()) == ["ckpt-0000000030.pt",
                                                                            "ckpt-0000000040.pt"]
    assert run_status(rundir)["status"] == "done"
    assert read_metrics(rundir / "metrics.jsonl") == read_metrics(full / "metrics.jsonl")


def test_rotation_never_counts_unreadable_files_nor_deletes_the_only_readable_one(tmp_path: Path) -> None:
    first = Checkpointer(tmp_path, keep=1)
    first.save(10, {"w": torch.ones(2)})
    (tmp_path / "ckpt-0000000040.pt").write_bytes(b"cut off")  # newer, unreadable
    resumed = Checkpointer(tmp_path, keep=1)  # what a resumed process sees
    path, _ = resumed.load_latest(say=lambda m: None)
    assert path.name == "ckpt-0000000010.pt"
    written = resumed.save(20, {"w": torch.full((2,), 2.0)})
    assert written.exists(), "the checkpoint just written was deleted by rotation"
    assert not path.exists(), "the older readable checkpoint is rotated out"
    found = Checkpointer(tmp_path, keep=1).load_latest(say=lambda m: None)
    assert found is not None and found[0] == written and torch.equal(found[1]["w"], torch.full((2,), 2.0))


def test_resume_past_an_unreadable_newest_checkpoint_keeps_what_run_json_names(tmp_path: Path,
                                                                               registry) -> None:
    path = recipe_file(tmp_path, "keep1", 60, checkpoint={"every": 10, "keep": 1})
    rundir = start_run(path, registry=registry, stop_at=20)
    ckpt = rundir / "checkpoints" / "ckpt-0000000050.pt"  # a newer checkpoint that a crash cut off
    ckpt.write_bytes((rundir / "checkpoints" / "ckpt-0000000020.pt").read_bytes()[:80])
    console = quiet()
    resume_run(rundir, registry=registry, console=console, stop_at=30)
    assert "skipping checkpoint" in said(console) and "resuming from ckpt-0000000020.pt" in said(console)
    named = rundir / "checkpoints" / str(run_status(rundir)["checkpoint"])
    assert named.name == "ckpt-0000000030.pt" and named.exists()


def test_a_run_without_any_checkpoint_starts_over_and_keeps_the_attempt(tmp_path: Path, registry) -> None:
    path = recipe_file(tmp_path, "early", 30)
    recipe = yaml.safe_load(path.read_text())
    recipe["fake-linear"]["fail_at"] = 5  # crashes before the first checkpoint (step 10)
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(RuntimeError, match="on purpose"):
        start_run(path, registry=registry)
    (rundir,) = (tmp_path / "runs" / "early").iterdir()
    assert run_status(rundir)["status"] == "failed"
    attempt = (rundir / "metrics.jsonl").read_text()
    fixed = yaml.safe_load((rundir / "recipe.yaml").read_text())
    del fixed["fake-linear"]["fail_at"]
    (rundir / "recipe.yaml").write_text(yaml.safe_dump(fixed))
    console = quiet()
    resume_run(rundir, registry=registry, console=console)
    assert "no checkpoint yet: starting over from step 0" in said(console)
    (previous,) = rundir.glob("previous-*")
    assert (previous / "metrics.jsonl").read_text() == attempt and attempt
    assert run_status(rundir)["status"] == "done"
    assert read_metrics(rundir / "metrics.jsonl")[0]["step"] == 1


def test_resume_after_a_line_cut_off_by_a_full_disk(tmp_path: Path, registry) -> None:
    full = start_run(recipe_file(tmp_path, "whole", 40), registry=registry)
    rundir = start_run(recipe_file(tmp_path, "cut", 40), registry=registry, stop_at=20)
    with open(rundir / "metrics.jsonl", "a") as f:
        f.write('{"step": 21, "train/lo')  # the disk filled up in the middle of a line
    resume_run(rundir, registry=registry, console=quiet())
    assert read_metrics(rundir / "metrics.jsonl") == read_metrics(full / "metrics.jsonl")


def test_resume_after_bytes_that_are_not_text_in_metrics(tmp_path: Path, registry) -> None:
    full = start_run(recipe_file(tmp_path, "whole", 40), registry=registry)
    rundir = start_run(recipe_file(tmp_path, "bytes", 40), registry=registry, stop_at=20)
    with open(rundir / "metrics.jsonl", "ab") as f:
        f.write(b'{"step": 21, "x\xdc\xff\n')  # a damaged line: UnicodeDecodeError traceback before
    resume_run(rundir, registry=registry, console=quiet())
    assert read_metrics(rundir / "metrics.jsonl") == read_metrics(full / "metrics.jsonl")


# ---- a finished run ----------------------------------------------------------------------------------------
def test_resume_of_a_finished_run_changes_nothing(tmp_path: Path, registry) -> None:
    rundir = start_run(recipe_file(tmp_path, "fin", 20), registry=registry)
    files = {p: p.read_bytes() for p in rundir.rglob("*") if p.is_file() and p.name != "run.lock"}
    console = quiet()
    resume_run(rundir, registry=registry, console=console)
    assert "is finished (done at step 20); nothing to resume" in said(console)
    assert {p: p.read_bytes() for p in rundir.rglob("*") if p.is_file() and p.name != "run.lock"} == files


# ---- the run lock ------------------------------------------------------------------------------------------
def test_run_lock_refuses_a_second_holder_and_names_the_pid(tmp_path: Path) -> None:
    assert lock_holder(tmp_path) is None
    with RunLock(tmp_path):
        assert lock_holder(tmp_path) == os.getpid()
        with pytest.raises(XferError, match=f"run {tmp_path} is in use by pid {os.getpid()}"), \
                RunLock(tmp_path):
            pass
    assert lock_holder(tmp_path) is None
    with RunLock(tmp_path):  # released: it can be taken again
        pass


def long_run(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
    path = recipe_file(tmp_path, "long", 200000, checkpoint={"every": 100, "keep": 2})
    proc = start_xfer("run", str(path), env=env)
    runs = tmp_path / "runs" / "long"
    wait_for(runs, "*/checkpoints/ckpt-*.pt")
    return proc, next(runs.iterdir())


def test_a_second_process_on_a_running_run_is_refused_and_kill_9_leaves_no_stale_lock(
        tmp_path: Path, fake_plugin_env: dict) -> None:
    proc, rundir = long_run(tmp_path, fake_plugin_env)
    try:
        lines = len((rundir / "metrics.jsonl").read_text().splitlines())
        second = xfer("resume", str(rundir), env=fake_plugin_env)
        assert second.returncode == 2, second.stderr
        assert f"run {rundir} is in use by pid {proc.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert len((rundir / "metrics.jsonl").read_text().splitlines()) >= lines, "metrics were truncated"
    finally:
        proc.kill()  # kill -9: no handler runs
        proc.communicate(timeout=60)
    result = xfer("resume", str(rundir), "--stop-after", "1", env=fake_plugin_env)
    assert result.returncode == 3, result.stderr  # stopped with a checkpoint, resumable
    assert "resuming from ckpt-" in result.stderr


def test_sweep_resume_skips_a_run_in_use(tmp_path: Path) -> None:
    sweep = Sweep(tmp_path, str(tmp_path / "recipe.yaml"), [], [], [SweepRun("seed=0", {"seed": 0})])
    rundir = sweep.rundir(sweep.runs[0])
    rundir.mkdir(parents=True)
    (rundir / "metrics.jsonl").write_text('{"step": 1}\n')  # started, no checkpoint yet
    with RunLock(rundir):
        run_local(sweep, max_parallel=1)
    run = sweep.runs[0]
    assert run.status == "in use" and run.error == f"run seed=0 is in use by pid {os.getpid()}; skipped"
    assert (rundir / "metrics.jsonl").exists(), "the sweep deleted a run another process writes"
    assert not (tmp_path / "logs").exists(), "no worker was started"


def test_a_sweep_worker_stopped_with_a_checkpoint_is_not_done(tmp_path: Path) -> None:
    from xfer.sweep import execute_command

    status, error = execute_command([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path / "w.log")
    assert status == "stopped" and error.startswith("stopped with a checkpoint (exit code 3)")


def test_two_sweep_processes_on_one_sweep_directory_are_refused(tmp_path: Path,
                                                                fake_plugin_env: dict) -> None:
    sweep = Sweep(tmp_path / "sweep", str(recipe_file(tmp_path, "swept", 5)), [], [],
                  [SweepRun("seed=0", {"seed": 0})])
    sweep.directory.mkdir()
    sweep.save()
    with RunLock(sweep.directory, kind="sweep"):
        result = xfer("sweep", "--resume", str(sweep.directory), env=fake_plugin_env)
    assert result.returncode == 2, result.stderr
    assert f"sweep {sweep.directory} is in use by pid {os.getpid()}" in result.stderr
    assert "Traceback" not in result.stderr
    assert Sweep.load(sweep.directory).runs[0].status == "pending", "the refused sweep wrote sweep.json"
    assert not (sweep.directory / "runs").exists(), "the refused sweep started a run"
