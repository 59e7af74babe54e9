"""Tables of what the plugins registered, for ``xfer list-plugins``."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from xfer.plugins import Loaded
from xfer.registry import SuiteSpec


def plugin_rows(loaded: Loaded) -> list[dict[str, Any]]:
    registry = loaded.registry
    rows = []
    for info in loaded.plugins:
        rows.append({
            "plugin": info.name, "distribution": info.distribution, "version": info.version,
            "status": info.status, "error": info.error,
            "methods": [{"name": m, "description": registry.methods[m].description} for m in info.methods],
            "suites": [{"name": s, "tasks": len(registry.suites[s].tasks)} for s in info.suites],
        })
    return rows


def plugins_table(loaded: Loaded) -> Table:
    table = Table(title="xfer plugins")
    for column in ("plugin", "distribution", "registers", "status"):
        table.add_column(column)
    for row in plugin_rows(loaded):
        registers = [f"method {m['name']}" for m in row["methods"]]
        registers += [f"suite {s['name']} ({s['tasks']} tasks)" for s in row["suites"]]
        status = {"ok": "[green]ok[/green]", "blocked": "[yellow]blocked[/yellow]"}.get(
            row["status"], f"[red]broken[/red]: {escape(row['error'])}")
        table.add_row(escape(row["plugin"]), escape(f"{row['distribution']} {row['version']}"),
                      escape("\n".join(registers) or "-"), status)  # plugin text is never markup
    return table


def tasks_table(suite: SuiteSpec) -> Table:
    table = Table(title=escape(f"suite {suite.name}: {len(suite.tasks)} tasks"))
    table.add_column("task")
    for task in suite.tasks:
        table.add_row(escape(task))
    return table
