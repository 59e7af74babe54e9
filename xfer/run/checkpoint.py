"""Checkpoints: atomic writes, the newest K kept, safe loading (``torch.load(weights_only=True)``).

A checkpoint is written to a temporary file, flushed to disk, then renamed into place, so a crash mid-write
leaves at most a ``*.tmp`` file that is never loaded. Loading never executes code from the run directory:
numpy arrays are stored as tensors (see :func:`to_safe`) and read back with ``weights_only=True``. If the
newest checkpoint cannot be read, the next older one is used and the reason is reported. Rotation keeps the
newest K *readable* checkpoints: a file found unreadable never counts as kept, and the checkpoint just
written is never deleted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xfer.errors import XferError
from xfer.run.storage import writing

_NAME = re.compile(r"^ckpt-(\d{10})\.pt$")
_ARRAY = "__ndarray__"


def to_safe(obj: Any) -> Any:
    """Replace numpy arrays and scalars (recursively) by tensors so ``weights_only`` loading accepts them."""
    if isinstance(obj, np.ndarray):
        return {_ARRAY: torch.from_numpy(np.ascontiguousarray(obj)), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: to_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_safe(v) for v in obj)
    return obj


def from_safe(obj: Any) -> Any:
    """Inverse of :func:`to_safe`."""
    if isinstance(obj, dict):
        if _ARRAY in obj:
            return obj[_ARRAY].numpy().astype(obj["dtype"], copy=False)
        return {k: from_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(from_safe(v) for v in obj)
    return obj


def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write through ``write(file)`` into ``path.tmp``, fsync, then rename over ``path``.

    A failed write (disk full, read-only, ...) removes ``path.tmp`` and raises
    :class:`~xfer.run.storage.WriteFailed` naming ``path``; ``path`` itself is untouched.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        with writing(path):
            with open(tmp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Checkpointer:
    """Saves ``ckpt-<step>.pt`` files in ``directory`` and keeps the newest ``keep`` readable ones."""

    def __init__(self, directory: Path, keep: int = 3) -> None:
        self.directory = directory
        self.keep = keep
        self.unreadable: dict[Path, str] = {}  # found by load_latest: path -> the error, in short
        self.last_good: Path | None = None  # the newest checkpoint known to be complete
        with writing(directory):
            directory.mkdir(parents=True, exist_ok=True)

    def paths(self) -> list[Path]:
        """Complete checkpoints, oldest first (temporary files never count)."""
        found = [p for p in self.directory.iterdir() if _NAME.match(p.name)]
        return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))  # type: ignore[union-attr]

    def save(self, step: int, state: dict[str, Any]) -> Path:
        path = self.directory / f"ckpt-{step:010d}.pt"
        atomic_write(path, lambda f: torch.save(to_safe(state), f))
        self.unreadable.pop(path, None)
        self.last_good = path
        readable = [p for p in self.paths() if p not in self.unreadable]
        for old in readable[: -self.keep]:
            if old != path:
                old.unlink(missing_ok=True)
        return path

    def load_latest(self, say: Callable[[str], None] = print) -> tuple[Path, dict[str, Any]] | None:
        """The newest readable checkpoint; unreadable ones are skipped with a message naming them (and
        remembered in ``unreadable``, so rotation never counts them)."""
        for path in reversed(self.paths()):
            try:
                state = load_checkpoint(path)
            except XferError as err:
                cause = err.__cause__
                self.unreadable[path] = err.message if cause is None else (
                    f"{type(cause).__name__}: {str(cause).split('. ')[0]}")
                say(f"skipping {err.message}")
                continue
            self.last_good = path
            return path, state
        return None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read one checkpoint safely; a corrupt or foreign file gives a message naming it."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as err:
        raise XferError(f"checkpoint {str(path)!r} does not exist") from err
    except Exception as err:  # truncated zip, pickle refusing a global, ...
        raise XferError(f"checkpoint {str(path)!r} cannot be read ({type(err).__name__}: {err})") from err
    return from_safe(state)


def load_run_checkpoint(path: Path, checkpoint: Path | None = None) -> dict[str, Any]:
    """``checkpoint`` when given; else ``path`` itself when it is a checkpoint file; else the newest readable
    checkpoint of the run directory ``path`` (what ``load_agent`` functions and finetuning read)."""
    target = Path(checkpoint or path)
    if target.is_file():
        return load_checkpoint(target)
    if not (target / "checkpoints").is_dir():
        raise XferError(f"{str(target)!r} is neither a checkpoint file nor a run directory with checkpoints")
    found = Checkpointer(target / "checkpoints").load_latest()
    if found is None:
        raise XferError(f"run {str(target)!r} has no readable checkpoint")
    return found[1]
