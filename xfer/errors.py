"""The one error type users see: a message that names the problem and the fix, never a bare traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class XferError(Exception):
    """A user-facing error. The CLI prints its message on one line (plus an optional hint) and exits 2."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean X?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class MissingDependency(XferError):
    """An optional dependency (a suite's simulator, torch, ray, ...) is not installed."""

    def __init__(self, what: str, module: str, extra: str) -> None:
        super().__init__(
            f"{what} needs the Python package {module!r}, which is not installed",
            hint=f'pip install "xfer[{extra}]"',
        )

