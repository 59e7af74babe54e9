"""Learning curves and final-performance tables from run directories (reads ``metrics.jsonl`` only).

Curves: each run's metric against ``x`` (``env_steps`` by default) is interpolated onto a common grid;
runs are grouped by a recipe key (``method`` by default) and drawn as the mean with a 95 % confidence band
over seeds (normal approximation, ±1.96·std/√n), the style of the papers' Fig. 4–5. A metric pattern with
``*`` (e.g. ``vid2act/weight/*``, ``xtra/eta/*``) draws one line per matching metric: Vid2Act's Fig. 9 and
XTRA's task-weight plot.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from xfer.errors import XferError
from xfer.run.logger import read_metrics


@dataclass
class RunData:
    path: Path
    recipe: dict[str, Any]
    rows: list[dict[str, Any]]

    def key(self, dotted: str) -> str:
        node: Any = self.recipe
        for part in dotted.split("."):
            node = node[int(part)] if isinstance(node, list) else (node or {}).get(part)
        return str(node)

    def series(self, metric: str, x: str) -> tuple[np.ndarray, np.ndarray]:
        pts = [(r.get(x, r["step"]), r[metric]) for r in self.rows if r.get(metric) is not None]
        if not pts:
            return np.zeros(0), np.zeros(0)
        xs, ys = np.array(pts, dtype=float).T
        return xs, ys


def find_runs(paths: Iterable[Path]) -> list[RunData]:
    """Every run directory (``recipe.yaml`` + ``metrics.jsonl``) at or below the given paths."""
    runs: list[RunData] = []
    for path in paths:
        if not path.exists():
            raise XferError(f"{str(path)!r} does not exist")
        candidates = [path] if (path / "metrics.jsonl").exists() else sorted(
            p.parent for p in path.rglob("metrics.jsonl"))
        for rundir in candidates:
            if (rundir / "recipe.yaml").exists():
                recipe = yaml.safe_load((rundir / "recipe.yaml").read_text()) or {}
                runs.append(RunData(rundir, recipe, read_metrics(rundir / "metrics.jsonl")))
    if not runs:
        raise XferError("no run directories (with recipe.yaml and metrics.jsonl) found in "
                        + ", ".join(map(str, paths)))
    return runs


def matching_metrics(runs: list[RunData], pattern: str) -> list[str]:
    names = sorted({k for run in runs for row in run.rows for k in row if fnmatch.fnmatchcase(k, pattern)})
    if not names:
        known = sorted({k for run in runs for row in run.rows for k in row} - {"step"})
        raise XferError(f"no metric matches {pattern!r}", hint="logged metrics: " + ", ".join(known[:30]))
    return names


def mean_band(curves: list[tuple[np.ndarray, np.ndarray]], points: int = 100
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Common x grid (up to the shortest run's end), mean and 95 % half-width over the runs."""
    curves = [(x, y) for x, y in curves if len(x)]
    end = min(x[-1] for x, _ in curves)
    start = max(x[0] for x, _ in curves)
    grid = np.linspace(start, end, points) if end > start else np.array([end])
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    half = 1.96 * ys.std(axis=0, ddof=1) / math.sqrt(len(ys)) if len(ys) > 1 else np.zeros_like(grid)
    return grid, ys.mean(axis=0), half


def plot_curves(runs: list[RunData], metric: str, x: str, group_by: str, out: Path,
                title: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    groups: dict[str, list[RunData]] = defaultdict(list)
    for run in runs:
        groups[run.key(group_by)].append(run)
    metrics = matching_metrics(runs, metric)
    for label, members in sorted(groups.items()):
        for name in metrics:
            curves = [run.series(name, x) for run in members]
            if not any(len(c[0]) for c in curves):
                continue
            grid, mean, half = mean_band(curves)
            line_label = label if len(metrics) == 1 else f"{label}: {name.rsplit('/', 1)[-1]}"
            (line,) = ax.plot(grid, mean, label=f"{line_label} (n={len(members)})")
            ax.fill_between(grid, mean - half, mean + half, color=line.get_color(), alpha=0.2)
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.set_title(title or metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def final_value(run: RunData, metric: str, last: int) -> float | None:
    values = [r[metric] for r in run.rows if r.get(metric) is not None]
    return float(np.mean(values[-last:])) if values else None


def final_table(runs: list[RunData], metric: str, group_by: str, rows_by: str, last: int = 1
                ) -> tuple[list[str], list[str], dict[tuple[str, str], list[float]]]:
    """Cells ``(row, column) → per-run final values`` (mean of each run's last ``last`` values)."""
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    for run in runs:
        value = final_value(run, metric, last)
        if value is not None:
            cells[(run.key(rows_by), run.key(group_by))].append(value)
    if not cells:
        raise XferError(f"no run logged {metric!r}")
    rows = sorted({r for r, _ in cells})
    cols = sorted({c for _, c in cells})
    return rows, cols, cells


def format_table(rows: list[str], cols: list[str], cells: dict[tuple[str, str], list[float]],
                 fmt: str, rows_by: str) -> str:
    def cell(r: str, c: str) -> str:
        values = cells.get((r, c))
        if not values:
            return "-"
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        return f"{np.mean(values):.3g} ± {std:.2g} (n={len(values)})"

    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([rows_by, *(f"{c} {s}" for c in cols for s in ("mean", "std", "n"))])
        for r in rows:
            line: list[Any] = [r]
            for c in cols:
                v = cells.get((r, c), [])
                line += [np.mean(v) if v else "", np.std(v, ddof=1) if len(v) > 1 else 0.0, len(v)]
            writer.writerow(line)
        return buffer.getvalue()
    header = f"| {rows_by} | " + " | ".join(cols) + " |"
    rule = "|" + "---|" * (len(cols) + 1)
    body = [f"| {r} | " + " | ".join(cell(r, c) for c in cols) + " |" for r in rows]
    return "\n".join([header, rule, *body]) + "\n"
