"""The live display of a run: phase, step, env steps/s, updates/s, last return, ETA.

A rich live table on a terminal; elsewhere (CI, pipes, sweep logs) one plain, complete line every
``every_s`` seconds (never wrapped, never read as markup). Rates and the ETA count only what this process
did in the current phase: a new phase (Vid2Act's Stage 2, whose update counter starts again at 0) resets
their baselines, and after a resume the ETA comes from the steps done since the resume, not since step 0.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


class Progress:
    def __init__(self, title: str, live: bool = True, console: Console | None = None,
                 every_s: float = 30.0) -> None:
        self.console = console or Console(stderr=True)
        self.title = title
        self.fields: dict[str, Any] = {"phase": "-", "step": 0, "total": 0}
        self._rates: dict[str, tuple[float, float, float]] = {}  # key -> (t0, count0, rate)
        self._base: tuple[float, int] | None = None  # (time, step) of the phase's first step in this process
        self._every = every_s
        self._last_print = 0.0
        self._live = Live(self._table(), console=self.console, refresh_per_second=2, transient=False) \
            if live and self.console.is_terminal else None

    def __enter__(self) -> Progress:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(*exc)

    def update(self, **fields: Any) -> None:
        """Set any of phase, step, total, env_steps, updates, return (and any other named value)."""
        now = time.monotonic()
        if fields.get("phase") not in (None, self.fields.get("phase")):
            self._rates, self._base = {}, None
        for key in ("env_steps", "updates"):
            if key in fields:
                t0, c0, rate = self._rates.get(key, (now, fields[key], 0.0))
                if fields[key] < c0:  # a counter that starts again: a new baseline
                    t0, c0, rate = now, fields[key], 0.0
                if now - t0 >= 2.0:
                    rate, t0, c0 = (fields[key] - c0) / (now - t0), now, fields[key]
                self._rates[key] = (t0, c0, rate)
        if "step" in fields and (self._base is None or fields["step"] < self._base[1]):
            self._base = (now, int(fields["step"]))
        self.fields.update(fields)
        if self._live is not None:
            self._live.update(self._table())
        elif now - self._last_print >= self._every:
            self._last_print = now
            self.console.print(self._line(), markup=False, highlight=False, soft_wrap=True)

    def _eta(self) -> str:
        step, total = self.fields.get("step", 0), self.fields.get("total", 0)
        if not total or self._base is None or step >= total or step <= self._base[1]:
            return "-"
        t0, step0 = self._base
        return _duration((time.monotonic() - t0) / (step - step0) * (total - step))

    def _values(self) -> dict[str, str]:
        values = {"phase": str(self.fields.get("phase")),
                  "step": f"{self.fields.get('step', 0)}/{self.fields.get('total', 0)}"}
        for key, label in (("env_steps", "env steps/s"), ("updates", "updates/s")):
            if key in self._rates:
                values[label] = f"{self._rates[key][2]:.1f}"
        if "return" in self.fields:
            values["last return"] = f"{self.fields['return']:.1f}"
        values["ETA"] = self._eta()
        values.update({k: str(v) for k, v in self.fields.items()
                       if k not in ("phase", "step", "total", "env_steps", "updates", "return")})
        return values

    def _table(self) -> Table:
        table = Table(title=self.title, show_header=False, min_width=40)
        for key, value in self._values().items():
            table.add_row(key, value)
        return table

    def _line(self) -> str:
        return f"[{self.title}] " + "  ".join(f"{k}: {v}" for k, v in self._values().items())


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    h, m = divmod(minutes, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
