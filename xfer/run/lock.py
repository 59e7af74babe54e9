"""One process per run directory: an OS file lock on ``run.lock``, held for the whole run.

``xfer run``, ``xfer resume`` and every sweep worker (each an ``xfer run``/``xfer resume`` process) take it
before touching the directory; ``xfer sweep`` holds the same kind of lock on its sweep directory
(``sweep.lock``), so two sweep processes never write one ``sweep.json``.

It is an ``fcntl.flock`` lock, which the kernel releases when the process
ends in any way (``kill -9`` included), so a dead run never leaves a stale lock; the file holds the pid of
the process that holds it, only to name it in the message. Where ``fcntl`` does not exist (Windows) runs
are not locked.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from xfer.errors import XferError
from xfer.run.storage import writing

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "run.lock"
SWEEP_LOCK_FILE = "sweep.lock"


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


def in_use(pid: int | None, rundir: Path, kind: str = "run") -> XferError:
    by = f"pid {pid}" if pid is not None else "another process"
    again = f"xfer sweep --resume {rundir}" if kind == "sweep" else f"xfer resume {rundir}"
    return XferError(f"{kind} {rundir} is in use by {by}",
                     hint="wait for it to end, or stop it (Ctrl-C or `kill PID` writes a checkpoint); "
                          f"then `{again}`")


class RunLock:
    """``with RunLock(rundir):`` refuses with "run DIR is in use by pid N" while another process holds it;
    ``RunLock(sweepdir, kind="sweep")`` locks a sweep directory the same way."""

    def __init__(self, rundir: Path, kind: str = "run") -> None:
        self.rundir = rundir
        self.kind = kind
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        if fcntl is None:
            return self
        path = self.rundir / (SWEEP_LOCK_FILE if self.kind == "sweep" else LOCK_FILE)
        with writing(path):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise in_use(pid, self.rundir, self.kind) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


def lock_holder(rundir: Path) -> int | None:
    """The pid holding ``rundir``'s lock (-1 when it is held but the pid is unknown); None when it is free."""
    path = rundir / LOCK_FILE
    if fcntl is None or not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            return -1 if pid is None else pid
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
