"""What a method's ``run(recipe, ctx)`` gets: the run directory, device, logging, checkpoints, stopping.

The contract for a method's loop (see README, "Writing a method"):

- build models, optimisers and environments first, then call ``state = ctx.restore()``: it restores the
  random streams (python, numpy, ``ctx.rng``, torch) to the checkpoint's, so whatever randomness
  construction consumed does not shift them; when it returns a dict, load your models, optimisers,
  replay and loop counters from it;
- draw all randomness from ``ctx.rng`` (numpy) and torch's global generator, and reset environments with
  seeds drawn from ``ctx.rng``; then a resumed run continues exactly as the uninterrupted one would;
- call ``ctx.checkpoint_due(step)`` / ``ctx.save(step, state)`` periodically and
  ``if ctx.should_stop(step): ctx.save(step, state); return`` at a safe point of every iteration
  (SIGINT/SIGTERM set the flag; a second Ctrl-C aborts at once).
"""

from __future__ import annotations

import json
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
from rich.console import Console

from xfer.recipe import Recipe, TaskSpec
from xfer.registry import Registry
from xfer.run.checkpoint import Checkpointer
from xfer.run.logger import MetricLogger
from xfer.run.progress import Progress
from xfer.run.seeding import capture_rng, restore_rng
from xfer.run.storage import writing


@dataclass
class RunContext:
    recipe: Recipe
    rundir: Path
    device: torch.device
    registry: Registry
    logger: MetricLogger
    checkpointer: Checkpointer
    progress: Progress
    rng: np.random.Generator
    console: Console
    stop_at: int | None = None
    _resume: dict[str, Any] | None = None
    _stop_requested: bool = False
    _last_save: int = 0
    _extra: dict[str, Any] = field(default_factory=dict)

    # ---- resume and checkpoints -------------------------------------------------------------------
    def restore(self) -> dict[str, Any] | None:
        """The method state of the checkpoint this run resumes from, or None for a fresh run.

        Restores the random streams to the checkpoint's; call it after building models and environments.
        """
        if self._resume is None:
            return None
        restore_rng(self._resume["rng"], self.rng)
        return self._resume["method"]

    @property
    def resumed_step(self) -> int:
        return 0 if self._resume is None else int(self._resume["step"])

    def checkpoint_due(self, step: int) -> bool:
        return step - self._last_save >= self.recipe.checkpoint.every

    def save(self, step: int, state: dict[str, Any]) -> Path:
        """Checkpoint the method's ``state`` with the random streams and the step, atomically."""
        self.logger.flush()
        path = self.checkpointer.save(step, {"step": step, "method": state, "rng": capture_rng(self.rng),
                                             "tensorboard": self.logger.tensorboard_lengths()})
        self._last_save = step
        self.set_status("running", step=step, checkpoint=path.name)
        return path

    def load_resume(self, checkpoint: dict[str, Any]) -> None:
        self._resume = checkpoint
        self._last_save = int(checkpoint["step"])

    # ---- stopping ----------------------------------------------------------------------------------
    def should_stop(self, step: int | None = None) -> bool:
        """True after SIGINT/SIGTERM, or once ``step`` reaches ``stop_at`` (``xfer run --stop-after``)."""
        if self.stop_at is not None and step is not None and step >= self.stop_at:
            self._stop_requested = True
        return self._stop_requested

    def request_stop(self) -> None:
        self._stop_requested = True

    def install_signal_handlers(self) -> dict[int, Any]:
        """SIGINT/SIGTERM request a checkpoint-and-stop; a second SIGINT aborts immediately."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum: int, frame: FrameType | None) -> None:
            if self._stop_requested and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.console.print("stopping: finishing this step and writing a checkpoint "
                               "(Ctrl-C again to abort without one)")
            self._stop_requested = True

        return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    # ---- helpers for methods -----------------------------------------------------------------------
    def say(self, message: str) -> None:
        self.console.print(message, highlight=False, markup=False)  # paths and task names are never markup

    def env_settings(self, task: TaskSpec) -> Any:
        return self.recipe.env_for(task)

    def make_env(self, task: TaskSpec, seed: int, n: int = 1) -> Any:
        """A gymnasium environment (``n == 1``) or vector environment for ``task`` with recipe settings."""
        from xfer.envs.make import make_env, make_vector_env

        settings = self.recipe.env_for(task)
        if n == 1 and settings.workers == 1:
            return make_env(task.suite, task.task, settings, seed, registry=self.registry)
        return make_vector_env(task.suite, task.task, settings, seed, max(n, settings.workers),
                               registry=self.registry)

    def dataset(self, task: TaskSpec) -> Path:
        """The directory of ``task``'s offline dataset; a ``collect:`` spec is collected once and cached."""
        from xfer.data.cache import ensure_dataset

        return ensure_dataset(task, self.recipe.env_for(task), self.recipe.datadir, registry=self.registry)

    def set_status(self, status: str, **info: Any) -> None:
        """Update ``run.json`` atomically (a failed write leaves the old file and no ``run.json.tmp``)."""
        path = self.rundir / "run.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        data.update(status=status, **info)
        tmp = path.with_name("run.json.tmp")
        try:
            with writing(path):
                tmp.write_text(json.dumps(data, indent=2))
                tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
