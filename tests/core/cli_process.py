"""Shared by the CLI tests: the CLI in a subprocess (to the end, or started and waited on), and a console that
records what it is told."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console


def xfer(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
         **kwargs: object) -> subprocess.CompletedProcess[str]:
    """``python -m xfer.cli ARGS`` with ``env`` added to this process's environment (2 min at most)."""
    return subprocess.run([sys.executable, "-m", "xfer.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout,
                          **kwargs)  # type: ignore[call-overload]


def start_xfer(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """``python -m xfer.cli ARGS`` started in the background (stdout and stderr piped)."""
    return subprocess.Popen([sys.executable, "-m", "xfer.cli", *args], text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **env})


def wait_for(folder: Path, pattern: str, timeout: float = 60) -> None:
    """Wait until a file matching ``pattern`` exists below ``folder`` (at most ``timeout`` seconds)."""
    deadline = time.time() + timeout
    while time.time() < deadline and not list(folder.glob(pattern)):
        time.sleep(0.2)


def quiet() -> Console:
    """A wide console writing into memory (read it back with :func:`said`)."""
    return Console(file=io.StringIO(), width=300)


def said(console: Console) -> str:
    return console.file.getvalue()  # type: ignore[attr-defined]
