"""A rich table of a sweep's runs and their states."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from xfer.sweep import Sweep

_STYLE = {"done": "green", "failed": "red", "stopped": "yellow", "running": "yellow", "pending": "dim"}


def sweep_table(sweep: Sweep) -> Table:
    table = Table(title=escape(f"sweep {sweep.directory}"))
    for column in ("run", "status", "seconds", "error"):
        table.add_column(column)
    for run in sweep.runs:
        status = Text(run.status, style=_STYLE.get(run.status, ""))  # plain text: "in use" has no style
        table.add_row(escape(run.id), status, f"{run.seconds:.0f}",
                      escape(run.error[:80]))  # ids and errors are never markup
    return table
