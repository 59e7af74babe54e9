"""Start and resume runs: make the run directory, restore state, call the method, record the outcome.

How a run ends, in ``run.json`` and as the exit code of ``xfer run``/``xfer resume`` (see README):
done (0), stopped with a checkpoint by Ctrl-C, SIGTERM or ``--stop-after`` (3, resumable), failed with a
one-line error (2 for user errors such as a full disk), aborted by a second Ctrl-C (130).
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from xfer import __version__
from xfer.errors import XferError
from xfer.plugins import get_registry
from xfer.recipe import Recipe
from xfer.recipe_io import dump_recipe, load_recipe, load_run_recipe
from xfer.registry import Registry, load_attr
from xfer.run.checkpoint import Checkpointer
from xfer.run.context import RunContext
from xfer.run.lock import LOCK_FILE, RunLock
from xfer.run.logger import MetricLogger
from xfer.run.progress import Progress
from xfer.run.storage import DISK_ERRNOS, WriteFailed, fix_for, writing

RECIPE_FILE = "recipe.yaml"
EXIT_STOPPED, EXIT_ABORTED = 3, 130
Latest = tuple[Path, dict[str, Any]]


class RunAborted(XferError):
    """A second Ctrl-C: the run ended at once, without a checkpoint (exit code 130)."""

    exit_code = EXIT_ABORTED


def new_rundir(recipe: Recipe) -> Path:
    """``<logdir>/<name>/<timestamp>``, made unique with a suffix when two runs start in one second."""
    base = recipe.logdir / (recipe.name or recipe.method) / datetime.now().strftime("%Y-%m-%d_%H%M%S")
    path, n = base, 1
    while path.exists():
        path, n = base.with_name(f"{base.name}_{n}"), n + 1
    with writing(path):
        path.mkdir(parents=True)
    return path


def start_run(recipe_path: Path, overrides: Iterable[str] = (), registry: Registry | None = None,
              stop_at: int | None = None, console: Console | None = None, rundir: Path | None = None) -> Path:
    """Validate the recipe, create its run directory with the resolved ``recipe.yaml``, and run it.

    ``rundir`` (used by sweeps) is an explicit, new or empty directory instead of ``logdir/name/time``.
    """
    registry = registry or get_registry()
    recipe = load_recipe(recipe_path, registry, overrides)
    if rundir is None:
        rundir = new_rundir(recipe)
    else:
        with writing(rundir):
            rundir.mkdir(parents=True, exist_ok=True)
    with RunLock(rundir):
        if any(p.name != LOCK_FILE for p in rundir.iterdir()):
            raise XferError(f"run directory {str(rundir)!r} is not empty",
                            hint="use `xfer resume` to continue it")
        with writing(rundir / RECIPE_FILE):
            (rundir / RECIPE_FILE).write_text(dump_recipe(recipe))
        execute(recipe, rundir, registry, None, stop_at=stop_at, console=console)
    return rundir


def resume_run(rundir: Path, registry: Registry | None = None, stop_at: int | None = None,
               console: Console | None = None, from_scratch: bool = False) -> Path:
    """Continue a run from its newest readable checkpoint; ``from_scratch`` starts it over from step 0
    with the earlier files moved into ``previous-<time>/``. A finished run is left as it is."""
    registry = registry or get_registry()
    console = console or Console(stderr=True)
    recipe_file = rundir / RECIPE_FILE
    if not recipe_file.is_file():
        raise XferError(f"{str(rundir)!r} is not a run directory (no {RECIPE_FILE})",
                        hint="pass the folder `xfer run` printed, e.g. runs/NAME/2026-11-23_120000")
    with RunLock(rundir):
        recipe = load_run_recipe(rundir, registry)
        info = run_status(rundir)
        if info.get("status") == "done" and not from_scratch:
            console.print(f"run {rundir} is finished (done at step {info.get('step', '?')}); nothing to "
                          "resume", highlight=False)
            return rundir
        latest = None if from_scratch else resume_point(rundir, recipe, console)
        if latest is None:
            moved = set_aside(rundir)
            why = "starting over" if from_scratch else "no checkpoint yet: starting over"
            console.print(f"{why} from step 0" + (f"; the earlier files are in {moved}" if moved else ""),
                          highlight=False)
        execute(recipe, rundir, registry, latest, stop_at=stop_at, console=console)
    return rundir


def resume_point(rundir: Path, recipe: Recipe, console: Console) -> Latest | None:
    """The newest readable checkpoint; None when the run has none yet (nothing to lose by starting over).
    When checkpoints exist but none can be read, refuse: starting over would discard the run."""
    checkpointer = Checkpointer(rundir / "checkpoints", keep=recipe.checkpoint.keep)
    skipped: list[str] = []
    latest = checkpointer.load_latest(say=skipped.append)
    if latest is not None:
        for message in skipped:
            console.print(message, highlight=False, markup=False)
        return latest
    found = checkpointer.paths()
    if found:
        names = ", ".join(p.name for p in found)
        why = checkpointer.unreadable[found[-1]]
        raise XferError(f"no checkpoint of {rundir} can be read: {names} (the newest: {why}); nothing was "
                        "changed",
                        hint=f"`xfer resume {rundir} --from-scratch` starts the run over, moving its "
                             f"metrics, TensorBoard events and checkpoints into {rundir}/previous-<time>/")
    return None


def set_aside(rundir: Path) -> Path | None:
    """Move everything but ``recipe.yaml`` and the lock into ``rundir/previous-<time>/`` (None if empty)."""
    keep = {RECIPE_FILE, LOCK_FILE}
    items = [p for p in rundir.iterdir() if p.name not in keep and not p.name.startswith("previous-")]
    if not items:
        return None
    stamp = datetime.now().strftime("%Y-%m-%d_%H%M%S")
    target, n = rundir / f"previous-{stamp}", 1
    while target.exists():
        target, n = rundir / f"previous-{stamp}_{n}", n + 1
    with writing(target):
        target.mkdir()
        for item in items:
            shutil.move(str(item), str(target / item.name))
    return target


def execute(recipe: Recipe, rundir: Path, registry: Registry, latest: Latest | None,
            stop_at: int | None = None, console: Console | None = None) -> str:
    """Run the recipe's method inside ``rundir`` (from ``latest`` when resuming); return how it ended, the
    status written to ``run.json``."""
    from xfer.run.device import configure_torch, select_device
    from xfer.run.seeding import seed_everything

    console = console or Console(stderr=True)
    spec = registry.method(recipe.method)
    run_fn = load_attr(spec.run, what=f"method {spec.name!r}", extra=spec.extra)
    device = select_device(recipe.device, say=lambda m: console.print(m, highlight=False))
    configure_torch(device, recipe.perf.threads, recipe.deterministic)
    rng = seed_everything(recipe.seed)
    checkpointer = Checkpointer(rundir / "checkpoints", keep=recipe.checkpoint.keep)
    resume_step = None if latest is None else int(latest[1]["step"])
    if latest is not None:  # the files newer than it were skipped as unreadable: rotation never counts them
        checkpointer.last_good = latest[0]
        checkpointer.unreadable = {p: "unreadable" for p in checkpointer.paths() if p.name > latest[0].name}
    logger = MetricLogger(rundir, recipe.logging.tensorboard, resume_step=resume_step,
                          tensorboard_lengths=None if latest is None else latest[1].get("tensorboard"))
    progress = Progress(f"{recipe.name} ({recipe.method})", live=recipe.logging.live, console=console)
    ctx = RunContext(recipe, rundir, device, registry, logger, checkpointer, progress, rng, console, stop_at)
    if latest is not None:
        console.print(f"resuming from {latest[0].name} (step {resume_step})", highlight=False)
        ctx.load_resume(latest[1])
    status, failure, bug, previous = "failed", None, None, {}
    try:
        ctx.set_status("running", xfer=__version__, started=time.time(), device=str(device), error="")
        previous = ctx.install_signal_handlers()
        with progress:
            run_fn(recipe, ctx)
        status = "stopped" if ctx.should_stop() else "done"
    except KeyboardInterrupt:
        status = "aborted"
        failure = RunAborted(f"run aborted without a checkpoint; resume from its last one with "
                             f"`xfer resume {rundir}`")
    except XferError as err:
        failure = err
    except OSError as err:
        if err.errno in DISK_ERRNOS:  # a method's own file (replay, video, ...)
            failure = WriteFailed(err.filename or f"a file in {rundir}", err)
        else:
            bug = err
    except Exception as err:  # a bug: recorded in run.json, raised with its traceback
        bug = err
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    try:
        logger.close()
    except WriteFailed as err:
        failure = failure or err
    if failure is not None and status != "aborted":
        status = "failed"
    if isinstance(failure, WriteFailed):
        failure = _with_checkpoint(failure, rundir, checkpointer)
    error = f"{type(bug).__name__}: {bug}" if bug is not None else "" if failure is None else failure.message
    if status == "aborted":
        error = "aborted by a second Ctrl-C (no checkpoint written)"
    try:
        ctx.set_status(status, error=error, finished=time.time())
    except WriteFailed as err:
        if failure is None:
            failure = _with_checkpoint(err, rundir, checkpointer)
        else:
            failure.message += f"; run.json could not be updated either ({err.reason})"
    if bug is not None:
        raise bug
    if failure is not None:
        raise failure
    if status == "stopped":
        console.print(f"stopped with a checkpoint; continue with `xfer resume {rundir}`", highlight=False)
    return status


def _with_checkpoint(err: WriteFailed, rundir: Path, checkpointer: Checkpointer) -> WriteFailed:
    """The disk error, plus the last good checkpoint and how to continue once the disk is fixed."""
    last = checkpointer.last_good
    err.message += (f"; the last good checkpoint is {last}" if last is not None
                    else "; no checkpoint was written yet")
    err.hint = f"{fix_for(err.errno, rundir)}, then continue with `xfer resume {rundir}`"
    return err


def run_status(rundir: Path) -> dict[str, object]:
    path = rundir / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}
