"""Start and resume runs: make the run directory, restore state, call the method, record the outcome."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from rich.console import Console

from xfer import __version__
from xfer.errors import XferError
from xfer.plugins import get_registry
from xfer.recipe import Recipe
from xfer.recipe_io import dump_recipe, load_recipe
from xfer.registry import Registry, load_attr
from xfer.run.checkpoint import Checkpointer
from xfer.run.context import RunContext
from xfer.run.logger import MetricLogger
from xfer.run.progress import Progress

RECIPE_FILE = "recipe.yaml"


def new_rundir(recipe: Recipe) -> Path:
    """``<logdir>/<name>/<timestamp>``, made unique with a suffix when two runs start in one second."""
    base = recipe.logdir / (recipe.name or recipe.method) / datetime.now().strftime("%Y-%m-%d_%H%M%S")
    path, n = base, 1
    while path.exists():
        path, n = base.with_name(f"{base.name}_{n}"), n + 1
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
    elif rundir.exists() and any(rundir.iterdir()):
        raise XferError(f"run directory {str(rundir)!r} is not empty",
                        hint="use `xfer resume` to continue it")
    else:
        rundir.mkdir(parents=True, exist_ok=True)
    (rundir / RECIPE_FILE).write_text(dump_recipe(recipe))
    execute(recipe, rundir, registry, resume=False, stop_at=stop_at, console=console)
    return rundir


def resume_run(rundir: Path, registry: Registry | None = None, stop_at: int | None = None,
               console: Console | None = None) -> Path:
    """Continue a run from its newest readable checkpoint (or from the start if it has none)."""
    registry = registry or get_registry()
    recipe_file = rundir / RECIPE_FILE
    if not recipe_file.is_file():
        raise XferError(f"{str(rundir)!r} is not a run directory (no {RECIPE_FILE})",
                        hint="pass the folder `xfer run` printed, e.g. runs/NAME/2026-11-23_120000")
    recipe = load_recipe(recipe_file, registry)
    execute(recipe, rundir, registry, resume=True, stop_at=stop_at, console=console)
    return rundir


def execute(recipe: Recipe, rundir: Path, registry: Registry, resume: bool, stop_at: int | None = None,
            console: Console | None = None) -> None:
    """Run the recipe's method inside ``rundir``; the status in ``run.json`` says how it ended."""
    from xfer.run.device import configure_torch, select_device
    from xfer.run.seeding import seed_everything

    console = console or Console(stderr=True)
    spec = registry.method(recipe.method)
    run_fn = load_attr(spec.run, what=f"method {spec.name!r}", extra=spec.extra)
    device = select_device(recipe.device, say=lambda m: console.print(m, highlight=False))
    configure_torch(device, recipe.perf.threads, recipe.deterministic)
    rng = seed_everything(recipe.seed)
    checkpointer = Checkpointer(rundir / "checkpoints", keep=recipe.checkpoint.keep)
    latest = checkpointer.load_latest(say=console.print) if resume else None
    resume_step = int(latest[1]["step"]) if latest else None
    logger = MetricLogger(rundir, recipe.logging.tensorboard, resume_step=resume_step if resume else None)
    if resume and latest is None:
        logger.close()
        (rundir / "metrics.jsonl").unlink(missing_ok=True)
        logger = MetricLogger(rundir, recipe.logging.tensorboard)
    progress = Progress(f"{recipe.name} ({recipe.method})", live=recipe.logging.live, console=console)
    ctx = RunContext(recipe, rundir, device, registry, logger, checkpointer, progress, rng, console, stop_at)
    if latest is not None:
        console.print(f"resuming from {latest[0].name} (step {resume_step})", highlight=False)
        ctx.load_resume(latest[1])
    ctx.set_status("running", xfer=__version__, started=time.time(), device=str(device))
    previous = ctx.install_signal_handlers()
    status, error = "failed", ""
    try:
        with progress:
            run_fn(recipe, ctx)
        status = "stopped" if ctx.should_stop() else "done"
    except XferError as err:
        error = err.message
        raise
    except KeyboardInterrupt:
        status, error = "aborted", "aborted by a second Ctrl-C (no checkpoint written)"
        raise XferError(f"run aborted; resume from its last checkpoint with `xfer resume {rundir}`") from None
    except Exception as err:
        error = f"{type(err).__name__}: {err}"
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        logger.close()
        ctx.set_status(status, error=error, finished=time.time())
    if status == "stopped":
        console.print(f"stopped with a checkpoint; continue with `xfer resume {rundir}`", highlight=False)


def run_status(rundir: Path) -> dict[str, object]:
    path = rundir / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}
