"""Sweeps: expand a grid over recipe keys into ordinary runs and execute them locally or on Ray.

A sweep directory holds ``sweep.json`` (the recipe, the grid, and every run's state: pending, running,
done, failed with its error) and ``runs/<id>/`` — each an ordinary run directory. Every run executes as its
own ``xfer run``/``xfer resume`` process, so one failing run never stops the others, and
``xfer sweep --resume SWEEPDIR`` resumes unfinished runs from their checkpoints and skips finished ones.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from xfer.errors import MissingDependency, XferError
from xfer.recipe_io import parse_set_value

SWEEP_FILE = "sweep.json"


def expand_grid(grid: Iterable[str]) -> list[dict[str, Any]]:
    """``["seed=0,1", "target.task=a,b"]`` → the 4 combinations as ``{key: value}`` (values are YAML)."""
    axes: list[tuple[str, list[Any]]] = []
    for item in grid:
        key, sep, raw = item.partition("=")
        if not sep or not key or not raw:
            raise XferError(f"--grid {item!r} is not of the form key.path=v1,v2,...")
        if key in {k for k, _ in axes}:
            raise XferError(f"--grid names {key!r} twice")
        axes.append((key, [parse_set_value(key, v, "--grid") for v in raw.split(",")]))
    return [dict(zip([k for k, _ in axes], combo, strict=True))
            for combo in itertools.product(*(values for _, values in axes))]


def run_id(overrides: dict[str, Any]) -> str:
    """A readable, filesystem-safe id: ``seed=0__target.task=drawer-open``."""
    text = "__".join(f"{k}={v}" for k, v in overrides.items()) or "base"
    safe = "".join(c if c.isalnum() or c in "=._-\0" else "-" for c in text.replace("__", "\0"))
    return safe.replace("\0", "__")


@dataclass
class SweepRun:
    id: str
    overrides: dict[str, Any]
    # pending | running | done | stopped (exit 3, resumable) | failed | in use (by another process; skipped)
    status: str = "pending"
    error: str = ""
    seconds: float = 0.0


@dataclass
class Sweep:
    directory: Path
    recipe: str
    base_overrides: list[str]
    grid: list[str]
    runs: list[SweepRun] = field(default_factory=list)

    @property
    def recipe_path(self) -> Path:
        return self.directory / "recipe.yaml"

    def rundir(self, run: SweepRun) -> Path:
        return self.directory / "runs" / run.id

    def save(self) -> None:
        data = {"recipe": self.recipe, "base_overrides": self.base_overrides, "grid": self.grid,
                "runs": [asdict(r) for r in self.runs]}
        tmp = self.directory / (SWEEP_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str))
        tmp.replace(self.directory / SWEEP_FILE)

    @classmethod
    def load(cls, directory: Path) -> Sweep:
        path = directory / SWEEP_FILE
        if not path.is_file():
            raise XferError(f"{str(directory)!r} is not a sweep directory (no {SWEEP_FILE})")
        data = json.loads(path.read_text())
        runs = [SweepRun(**r) for r in data["runs"]]
        return cls(directory, data["recipe"], data["base_overrides"], data["grid"], runs)


def create_sweep(recipe: Path, grid: list[str], overrides: list[str], root: Path) -> Sweep:
    """Validate every combination first (so a typo fails before anything runs), then write the sweep dir."""
    from xfer.plugins import get_registry
    from xfer.recipe_io import load_recipe

    combos = expand_grid(grid)
    registry = get_registry()
    for combo in combos:
        load_recipe(recipe, registry, [*overrides, *(f"{k}={_yaml(v)}" for k, v in combo.items())])
    directory = root / recipe.stem / datetime.now().strftime("%Y-%m-%d_%H%M%S")
    directory.mkdir(parents=True)
    shutil.copyfile(recipe, directory / "recipe.yaml")
    sweep = Sweep(directory, str(recipe), overrides, grid, [SweepRun(run_id(c), c) for c in combos])
    sweep.save()
    return sweep


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def command_for(sweep: Sweep, run: SweepRun) -> list[str]:
    """``xfer resume`` when the run has a checkpoint, else a fresh ``xfer run`` into its directory."""
    rundir = sweep.rundir(run)
    xfer = [sys.executable, "-m", "xfer.cli"]
    if (rundir / "checkpoints").is_dir() and any((rundir / "checkpoints").glob("ckpt-*.pt")):
        return [*xfer, "resume", str(rundir)]
    if rundir.exists():
        shutil.rmtree(rundir)  # started but never checkpointed: nothing to keep
    sets = [*sweep.base_overrides, *(f"{k}={_yaml(v)}" for k, v in run.overrides.items())]
    sets.append(f"name={run.id}")
    args = [a for s in sets for a in ("--set", s)]
    return [*xfer, "run", str(sweep.recipe_path), *args, "--rundir", str(rundir)]


def refuse_if_in_use(sweep: Sweep, run: SweepRun) -> bool:
    """True (the run marked ``in use``, with the message) when another process holds the run's lock: the
    sweep neither deletes nor resumes it (see :mod:`xfer.run.lock`)."""
    from xfer.run.lock import lock_holder

    pid = lock_holder(sweep.rundir(run))
    if pid is None:
        return False
    by = "another process" if pid < 0 else f"pid {pid}"
    run.status, run.error = "in use", f"run {run.id} is in use by {by}; skipped"
    return True


def execute_command(command: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[str, str]:
    """Run one sweep member as its own process; return its status (done | stopped | failed) and the last
    error line. Exit code 3 is ``xfer run``/``xfer resume`` stopping with a checkpoint (SIGINT/SIGTERM)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        proc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, **(env or {})})
    if proc.returncode == 0:
        return "done", ""
    if proc.returncode == 3:
        return "stopped", "stopped with a checkpoint (exit code 3); `xfer sweep --resume` continues it"
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("error:", "RuntimeError", "Error"))] or lines[-1:]
    return "failed", (errors[-1] if errors else f"exit code {proc.returncode}")


def run_local(sweep: Sweep, max_parallel: int, on_change: Callable[[Sweep], None] | None = None) -> Sweep:
    """Execute the unfinished runs in worker processes, at most ``max_parallel`` at once."""
    todo = [r for r in sweep.runs if r.status != "done"]
    with ThreadPoolExecutor(max_workers=max(1, max_parallel)) as pool:
        pending: dict[Future[tuple[bool, str]], tuple[SweepRun, float]] = {}
        for run in todo:
            if refuse_if_in_use(sweep, run):
                continue
            run.status, run.error = "running", ""
            command = command_for(sweep, run)
            log = sweep.directory / "logs" / f"{run.id}.log"
            pending[pool.submit(execute_command, command, log)] = (run, time.monotonic())
        sweep.save()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                run, started = pending.pop(future)
                run.status, run.error = future.result()
                run.seconds = time.monotonic() - started
                sweep.save()
                if on_change:
                    on_change(sweep)
    return sweep


def run_ray(sweep: Sweep, address: str | None, gpus_per_run: float, cpus_per_run: float,
            on_change: Callable[[Sweep], None] | None = None) -> Sweep:
    """Submit unfinished runs as Ray tasks with the resources each asks for (``address=None``: local Ray)."""
    try:
        import ray
    except ModuleNotFoundError as err:
        raise MissingDependency("xfer sweep --backend ray", "ray", "ray") from err
    env_vars = {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False,
             runtime_env={"env_vars": env_vars})
    remote = ray.remote(num_gpus=gpus_per_run, num_cpus=cpus_per_run)(execute_command)
    refs = {}
    for run in sweep.runs:
        if run.status == "done" or refuse_if_in_use(sweep, run):
            continue
        run.status, run.error = "running", ""
        log = sweep.directory / "logs" / f"{run.id}.log"
        refs[remote.remote(command_for(sweep, run), log)] = (run, time.monotonic())
    sweep.save()
    while refs:
        ready, _ = ray.wait(list(refs), num_returns=1)
        run, started = refs.pop(ready[0])
        try:
            run.status, run.error = ray.get(ready[0])
        except Exception as err:  # the task itself died (node lost, ...)
            run.status, run.error = "failed", f"{type(err).__name__}: {err}"
        run.seconds = time.monotonic() - started
        sweep.save()
        if on_change:
            on_change(sweep)
    return sweep
