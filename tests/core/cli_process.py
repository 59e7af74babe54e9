"""Shared by the run-safety tests: the CLI in a subprocess, and a console that records what it is told."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from rich.console import Console


def xfer(*args: str, env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """``python -m xfer.cli ARGS`` with ``env`` added to this process's environment (2 min at most)."""
    return subprocess.run([sys.executable, "-m", "xfer.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120, **kwargs)  # type: ignore[call-overload]


def quiet() -> Console:
    """A wide console writing into memory (read it back with :func:`said`)."""
    return Console(file=io.StringIO(), width=300)


def said(console: Console) -> str:
    return console.file.getvalue()  # type: ignore[attr-defined]
