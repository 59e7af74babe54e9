"""How runs end and what they report: a full disk, exit codes, eval's checkpoint, progress lines, TensorBoard.

Disk errors are real OS errors at the file boundary: a write into /dev/full (ENOSPC) and a write past a
process's RLIMIT_FSIZE (EFBIG); the method that interrupts itself sends itself real signals.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from cli_process import quiet, xfer
from rich.console import Console

from xfer.errors import XferError
from xfer.run import progress as progress_module
from xfer.run.checkpoint import Checkpointer
from xfer.run.logger import read_metrics
from xfer.run.runner import resume_run, run_status, start_run
from xfer.testing import fake_registry

PLUGIN = '''
import os, signal, time
from pydantic import BaseModel, ConfigDict
from xfer.hookspecs import hookimpl
from xfer.registry import MethodSpec

OFFSET = 1000


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fail_at: int | None = None
    own_file: bool = False  # write a file of its own each step (as a replay buffer does)


def interrupt_twice(recipe, ctx):
    os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C: stop at the next safe point ...
    time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGINT)  # ... the second, before one is reached: abort
    time.sleep(10)


def offset_steps(recipe, ctx):
    """A second stage in the run, as Vid2Act, XTRA and EfficientZero have: the run's step is OFFSET +
    environment steps; TensorBoard plots the environment steps."""
    saved = ctx.restore()
    env_step = 0 if saved is None else saved["env_step"]
    while env_step < 40:
        env_step += 1
        ctx.logger.log(OFFSET + env_step, {"train/value": float(env_step)}, env_steps=env_step)
        cfg = recipe.config
        if cfg.own_file:
            with open(ctx.rundir / "own.bin", "ab") as f:
                f.write(b"x" * 10)
        if cfg.fail_at is not None and env_step == cfg.fail_at and saved is None:
            raise RuntimeError("crashed on purpose")
        if env_step % 10 == 0 or ctx.should_stop(OFFSET + env_step):
            ctx.save(OFFSET + env_step, {"env_step": env_step})
        if ctx.should_stop(OFFSET + env_step):
            return


class Plugin:
    @hookimpl
    def xfer_register_methods(self, register):
        register(MethodSpec(name="interrupt-twice", config=Options, run="xfer_ending_ep:interrupt_twice",
                            extra="dev"))
        register(MethodSpec(name="offset-steps", config=Options, run="xfer_ending_ep:offset_steps",
                            extra="dev"))


plugin = Plugin()
'''


@pytest.fixture(scope="module")
def ending_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real installed plugin (module + dist-info entry point) with the two methods above."""
    site = tmp_path_factory.mktemp("ending_site")
    (site / "xfer_ending_ep.py").write_text(PLUGIN)
    dist = site / "xfer_ending_ep-0.0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: xfer-ending-ep\nVersion: 0.0.0\n")
    (dist / "entry_points.txt").write_text("[xfer]\nending = xfer_ending_ep:plugin\n")
    return site


def recipe_file(tmp_path: Path, name: str, method: str = "fake-linear", section: dict | None = None,
                **top: object) -> Path:
    recipe = {
        "method": method, "name": name, "device": "cpu", "seed": 3, "logdir": str(tmp_path / "runs"),
        "target": {"suite": "fake", "task": "reach"},
        "checkpoint": {"every": 10, "keep": 2}, "logging": {"every": 1, "tensorboard": False, "live": False},
        method: section if section is not None else {"steps": 60}, **top,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


# ---- a full disk -------------------------------------------------------------------------------------------
def test_disk_full_while_checkpointing_is_one_line_and_resume_works_after(tmp_path: Path, registry) -> None:
    full = start_run(recipe_file(tmp_path, "ref"), registry=registry)
    rundir = start_run(recipe_file(tmp_path, "full"), registry=registry, stop_at=20)
    tmp = rundir / "checkpoints" / "ckpt-0000000030.pt.tmp"
    tmp.symlink_to("/dev/full")  # the next checkpoint's write meets a full device: ENOSPC
    with pytest.raises(XferError) as caught:
        resume_run(rundir, registry=registry, console=quiet())
    message = caught.value.message
    ckpts = rundir / "checkpoints"
    assert message.startswith(f"no space left on device while writing {ckpts}/ckpt-0000000030.pt")
    assert message.endswith(f"the last good checkpoint is {ckpts}/ckpt-0000000020.pt")
    assert "xfer resume" in (caught.value.hint or "")
    assert run_status(rundir)["status"] == "failed" and run_status(rundir)["error"] == message
    assert not list(rundir.rglob("*.tmp")), "a temporary file was left behind"
    resume_run(rundir, registry=registry, console=quiet())  # space is back
    assert run_status(rundir)["status"] == "done"
    assert read_metrics(rundir / "metrics.jsonl") == read_metrics(full / "metrics.jsonl")


def sysfs_refuses_writes() -> bool:
    """Whether writing /sys/kernel/notes raises PermissionError here (it does on Linux, even for root)."""
    try:
        with open("/sys/kernel/notes", "ab"):
            return False
    except PermissionError:
        return True
    except OSError:
        return False


needs_sysfs = pytest.mark.skipif(not sysfs_refuses_writes(), reason="needs Linux sysfs to refuse a write")


@needs_sysfs
def test_permission_denied_while_checkpointing_is_one_line(tmp_path: Path, registry) -> None:
    rundir = start_run(recipe_file(tmp_path, "perm"), registry=registry, stop_at=20)
    tmp = rundir / "checkpoints" / "ckpt-0000000030.pt.tmp"
    tmp.symlink_to("/sys/kernel/notes")  # EACCES, even as root
    with pytest.raises(XferError) as caught:
        resume_run(rundir, registry=registry, console=quiet())
    assert caught.value.message.startswith("permission denied while writing ")
    assert caught.value.message.endswith("ckpt-0000000020.pt") and "writable" in (caught.value.hint or "")
    assert run_status(rundir)["status"] == "failed" and not list(rundir.rglob("*.tmp"))


@needs_sysfs
def test_xfer_run_into_a_directory_it_may_not_create_is_one_line(tmp_path: Path,
                                                                 fake_plugin_env: dict) -> None:
    result = xfer("run", str(recipe_file(tmp_path, "nope", logdir="/sys/xfer-runs")), env=fake_plugin_env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "operation not permitted while writing /sys/xfer-runs/nope/" in result.stderr


def test_file_size_limit_during_xfer_run_exits_2_with_one_line(tmp_path: Path, fake_plugin_env: dict) -> None:
    path = recipe_file(tmp_path, "fsize", section={"steps": 2000}, checkpoint={"every": 100, "keep": 2},
                       logging={"every": 1000, "tensorboard": False, "live": False})
    limit = 40_000  # bytes a file: a checkpoint (~19 kB + 16 bytes a step) outgrows it first, near step 1300

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = xfer("run", str(path), env=fake_plugin_env, preexec_fn=small_files)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "file too large" in line and "while writing" in line and "the last good checkpoint is" in line
    (rundir,) = (tmp_path / "runs" / "fsize").iterdir()
    status = run_status(rundir)
    assert status["status"] == "failed" and "file too large" in str(status["error"])
    assert not list(rundir.rglob("*.tmp")), "a temporary file was left behind"
    again = xfer("resume", str(rundir), env=fake_plugin_env)
    assert again.returncode == 0, again.stderr
    assert run_status(rundir)["status"] == "done"


def ending_registry(ending_site: Path):
    sys.path.insert(0, str(ending_site))
    try:
        import xfer_ending_ep
    finally:
        sys.path.remove(str(ending_site))
    return fake_registry({"ending": xfer_ending_ep.plugin})


def test_disk_error_in_a_methods_own_file_is_still_one_line(tmp_path: Path, ending_site: Path) -> None:
    registry = ending_registry(ending_site)
    path = recipe_file(tmp_path, "own", method="offset-steps", section={"own_file": True})
    rundir = start_run(path, registry=registry, stop_at=1020)
    (rundir / "own.bin").unlink()
    (rundir / "own.bin").symlink_to("/dev/full")
    with pytest.raises(XferError) as caught:
        resume_run(rundir, registry=registry, console=quiet())
    assert caught.value.message == (f"no space left on device while writing a file in {rundir}; the last "
                                    f"good checkpoint is {rundir}/checkpoints/ckpt-0000001020.pt")
    assert run_status(rundir)["status"] == "failed"
    (rundir / "own.bin").unlink()
    resume_run(rundir, registry=registry, console=quiet())
    assert run_status(rundir)["status"] == "done"


# ---- exit codes --------------------------------------------------------------------------------------------
def test_a_second_ctrl_c_aborts_with_code_130(tmp_path: Path, fake_plugin_env: dict,
                                              ending_site: Path) -> None:
    env = {"PYTHONPATH": os.pathsep.join((str(ending_site), fake_plugin_env["PYTHONPATH"]))}
    path = recipe_file(tmp_path, "abort", method="interrupt-twice", section={})
    result = xfer("run", str(path), env=env)
    assert result.returncode == 130, result.stderr
    assert "run aborted without a checkpoint" in result.stderr and "Traceback" not in result.stderr
    (rundir,) = (tmp_path / "runs" / "abort").iterdir()
    assert run_status(rundir)["status"] == "aborted"


def test_stop_after_exits_3_and_finishing_exits_0(tmp_path: Path, fake_plugin_env: dict) -> None:
    stopped = xfer("run", str(recipe_file(tmp_path, "codes")), "--stop-after", "20", env=fake_plugin_env)
    assert stopped.returncode == 3, stopped.stderr
    (rundir,) = (tmp_path / "runs" / "codes").iterdir()
    finished = xfer("resume", str(rundir), env=fake_plugin_env)
    assert finished.returncode == 0, finished.stderr
    again = xfer("resume", str(rundir), env=fake_plugin_env)
    assert again.returncode == 0 and "nothing to resume" in again.stderr
    assert "3 stopped with a checkpoint" in " ".join(xfer("run", "--help", env={}).stdout.split())


@pytest.mark.parametrize(("status", "code"), [("stopped", 3), ("done", 0)])
def test_a_ctrl_c_while_the_process_exits_keeps_the_runs_exit_code(tmp_path: Path, status: str,
                                                                     code: int) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"status": status}))
    script = (
        "import os, signal, sys, time\n"
        "from pathlib import Path\n"
        "import typer\n"
        "from xfer.cli import _exit_if_stopped\n"
        "try:\n"
        "    _exit_if_stopped(Path(sys.argv[1]))\n"
        "    code = 0\n"
        "except typer.Exit as exit_:\n"
        "    code = exit_.exit_code\n"
        "os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C in the seconds the exit takes\n"
        "time.sleep(0.5)\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == code, result.stderr  # was -2: killed by SIGINT, as if aborted


# ---- eval says which checkpoint ----------------------------------------------------------------------------
def test_eval_names_the_checkpoint_and_the_fall_back(tmp_path: Path, registry,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from xfer.run.evaluate import evaluate_run

    rundir = start_run(recipe_file(tmp_path, "ev", section={"steps": 30}), registry=registry)
    newest = rundir / "checkpoints" / "ckpt-0000000030.pt"
    newest.write_bytes(newest.read_bytes()[:100])
    monkeypatch.setattr("xfer.plugins.get_registry", fake_registry)
    console = quiet()
    result = evaluate_run(rundir, 1, None, False, 0, "cpu", console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "ckpt-0000000030.pt" in text and "fell back to ckpt-0000000020.pt" in text
    assert f"evaluating {rundir}/checkpoints/ckpt-0000000020.pt (step 20)" in text
    assert result["step"] == 20 and result["checkpoint"].endswith("ckpt-0000000020.pt")


# ---- progress ----------------------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def progress_with_clock(monkeypatch: pytest.MonkeyPatch) -> tuple[progress_module.Progress, Clock, Console]:
    clock = Clock()
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=clock))
    console = Console(file=io.StringIO(), width=80)  # not a terminal, 80 columns
    progress = progress_module.Progress("quick (vid2act)", live=True, console=console, every_s=0.0)
    return progress, clock, console


def test_a_new_stage_resets_the_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    progress, clock, _ = progress_with_clock(monkeypatch)
    progress.update(phase="pretrain", total=1000, step=0, updates=0)
    clock.now = 10.0
    progress.update(step=1000, updates=1000)
    assert progress._values()["updates/s"] == "100.0"
    progress.update(phase="transfer", total=500, step=0, updates=0, env_steps=0)  # Stage 2 counts anew
    clock.now = 12.5
    progress.update(step=50, updates=50, env_steps=100)
    assert progress._values()["updates/s"] == "20.0" and progress._values()["env steps/s"] == "40.0"


def test_eta_after_resume_counts_only_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    progress, clock, _ = progress_with_clock(monkeypatch)
    progress.update(phase="train", total=1000, step=500)  # resumed at step 500
    clock.now = 10.0
    progress.update(step=600)  # 100 steps in 10 s; 400 to go
    assert progress._values()["ETA"] == "0m40s"


def test_plain_lines_outside_a_terminal_are_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    progress, clock, console = progress_with_clock(monkeypatch)
    progress.update(phase="pretrain [stage 1]", total=100, step=5, updates=5, env_steps=3,
                    **{"return": 1.0, "eval return": "12.3", "episodes": 4, "note": "x" * 40})
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert text.count("\n") == 1, text
    assert text.startswith("[quick (vid2act)] phase: pretrain [stage 1]  step: 5/100")
    assert text.rstrip().endswith("note: " + "x" * 40)


# ---- TensorBoard: one point per x after resume ----------------------------------------------------------
def tensorboard_points(rundir: Path) -> dict[str, list[int]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(rundir))
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def raw_points(rundir: Path) -> list[tuple[str, int]]:
    """Every scalar event in the files, without any reader-side purge."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    points = []
    for path in sorted(rundir.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            points += [(value.tag, event.step) for value in event.summary.value]
    return points


def test_tensorboard_holds_no_duplicate_point_after_a_crash_and_resume(tmp_path: Path,
                                                                       ending_site: Path) -> None:
    registry = ending_registry(ending_site)
    logging = {"every": 1, "tensorboard": True, "live": False}
    path = recipe_file(tmp_path, "tb", method="offset-steps", section={"fail_at": 27}, logging=logging)
    with pytest.raises(RuntimeError, match="crashed on purpose"):
        start_run(path, registry=registry)  # checkpoint at 1020; events up to 27 env steps written
    (rundir,) = (tmp_path / "runs" / "tb").iterdir()
    resume_run(rundir, registry=registry, console=quiet())
    assert run_status(rundir)["status"] == "done"
    assert tensorboard_points(rundir) == {"train/value": list(range(1, 41))}
    assert sorted(step for _, step in raw_points(rundir)) == list(range(1, 41))
    assert [row["step"] for row in read_metrics(rundir / "metrics.jsonl")] == list(range(1001, 1041))


def test_checkpoints_record_the_event_file_lengths(tmp_path: Path, registry) -> None:
    logging = {"every": 1, "tensorboard": True, "live": False}
    rundir = start_run(recipe_file(tmp_path, "lengths", logging=logging), registry=registry, stop_at=20)
    state = Checkpointer(rundir / "checkpoints").load_latest()[1]  # type: ignore[index]
    (events,) = rundir.glob("events.out.tfevents.*")
    assert state["tensorboard"] == {events.name: events.stat().st_size}
    assert json.loads((rundir / "run.json").read_text())["status"] == "stopped"


def test_a_write_refused_before_the_run_starts_says_how_to_fix_it(tmp_path: Path) -> None:
    import errno

    from xfer.run.storage import WriteFailed

    hints = {code: WriteFailed(tmp_path / "run.lock", OSError(code, os.strerror(code))).hint or ""
             for code in (errno.EROFS, errno.EACCES, errno.ENOSPC, errno.EFBIG)}
    # xfer resume on a read-only run directory printed only "read-only file system while writing .../run.lock"
    assert "writable" in hints[errno.EROFS] and "writable" in hints[errno.EACCES]
    assert "free some space" in hints[errno.ENOSPC] and "ulimit -f" in hints[errno.EFBIG]
