"""Learning curves and final-performance tables from run directories (reads ``metrics.jsonl`` only).

Curves: each run's metric against ``x`` (``env_steps`` by default; any counter the runs log next to the
metric) is interpolated linearly onto a common grid; runs are grouped by a recipe key (``method`` by
default) and drawn as a statistic over seeds (``mean`` by default, or ``iqm``/``median``) with its 95 %
band: ``normal`` (±1.96·std/√n, the default for the mean, the style of the papers' Fig. 4–5) or
``bootstrap`` (stratified bootstrap of the chosen statistic at each x, :mod:`xfer.stats`). A metric pattern
with ``*`` (e.g. ``vid2act/weight/*``, ``xtra/eta/*``) draws one line per matching metric: Vid2Act's Fig. 9
and XTRA's task-weight plot; a comma-separated list draws each (``value/estimate,value/true_return``:
CoWorld's Fig. 5b). ``x`` = ``"a,b"``: each run is drawn against the first of the counters it logs (as
``xfer compare``), e.g. CoWorld's ``target_updates`` beside an offline baseline's ``updates``. Every
statistic counts one run per seed (:func:`one_run_per_seed`).
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from xfer.errors import XferError
from xfer.results import (
    RunData,
    check_counter,
    find_runs,
    matching_metrics,
    one_run_per_seed,
    runs_with_curves,
    with_counter,
)
from xfer.stats import DEFAULT_REPS, aggregate, as_scores, check_stat, interval

__all__ = ["RunData", "find_runs", "matching_metrics", "one_run_per_seed", "mean_band", "stat_band",
           "plot_curves", "final_table", "format_table"]

Warn = Callable[[str], None]
CIS = ("normal", "bootstrap", "none")


def _on_grid(curves: list[tuple[np.ndarray, np.ndarray]], points: int) -> tuple[np.ndarray, np.ndarray]:
    """Common x grid (from the latest start to the earliest end) and each run's curve on it."""
    curves = [(x, y) for x, y in curves if len(x)]
    end = min(x[-1] for x, _ in curves)
    start = max(x[0] for x, _ in curves)
    grid = np.linspace(start, end, points) if end > start else np.array([end])
    return grid, np.stack([np.interp(grid, x, y) for x, y in curves])


def mean_band(curves: list[tuple[np.ndarray, np.ndarray]], points: int = 100
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Common x grid, mean and normal-approximation 95 % half-width (1.96·std/√n) over the runs."""
    grid, ys = _on_grid(curves, points)
    half = 1.96 * ys.std(axis=0, ddof=1) / math.sqrt(len(ys)) if len(ys) > 1 else np.zeros_like(grid)
    return grid, ys.mean(axis=0), half


def resolve_ci(stat: str, ci: str | None) -> str:
    """The band of a plot: ``normal`` for the mean unless told, ``bootstrap`` for the IQM and median."""
    check_stat(stat)
    ci = ci or ("normal" if stat == "mean" else "bootstrap")
    if ci not in CIS:
        raise XferError(f"unknown --ci {ci!r}", hint="use --ci " + ", --ci ".join(CIS))
    if ci == "normal" and stat != "mean":
        raise XferError(f"--ci normal is the band of the mean, not of the {stat}",
                        hint=f"use --ci bootstrap with --stat {stat}")
    return ci


def stat_band(curves: list[tuple[np.ndarray, np.ndarray]], stat: str = "mean", ci: str | None = None,
              reps: int = DEFAULT_REPS, seed: int = 0, points: int = 100
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Grid, the statistic over runs at each x, and the band's lower and upper edges."""
    ci = resolve_ci(stat, ci)
    if ci == "normal":
        grid, mean, half = mean_band(curves, points)
        return grid, mean, mean - half, mean + half
    grid, ys = _on_grid(curves, points)
    scores = ys[:, None, :]  # [runs, 1 task, points]
    center = aggregate(scores, check_stat(stat))
    if ci == "none":
        return grid, center, center, center
    low, high = interval(scores, check_stat(stat), reps, seed)
    return grid, center, low, high


def plot_curves(runs: list[RunData], metric: str, x: str, group_by: str, out: Path,
                title: str | None = None, stat: str = "mean", ci: str | None = None,
                reps: int = DEFAULT_REPS, seed: int = 0, warn: Warn | None = None) -> Path:
    metrics = list(dict.fromkeys(name for pattern in metric.split(",")
                                 for name in matching_metrics(runs, pattern.strip())))
    runs = with_counter(runs, metrics, x)
    check_counter(runs, metrics, x)
    band = resolve_ci(stat, ci)
    runs = one_run_per_seed(runs, (group_by, "target.task"), warn)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    groups: dict[str, list[RunData]] = defaultdict(list)
    for run in runs:
        groups[run.key(group_by)].append(run)
    # several groups and several metrics: a colour per group, a line style per metric
    styled = len(groups) > 1 and len(metrics) > 1
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (label, members) in enumerate(sorted(groups.items())):
        for number, name in enumerate(metrics):
            curves = [c for c in (run.series(name, x) for run in members) if len(c[0])]
            if not curves:
                continue
            grid, center, low, high = stat_band(curves, stat, band, reps, seed)
            line_label = label if len(metrics) == 1 else f"{label}: {name.rsplit('/', 1)[-1]}"
            style = ({"color": palette[index % len(palette)], "linestyle": ("-", "--", ":", "-.")[number % 4]}
                     if styled else {})
            (line,) = ax.plot(grid, center, label=f"{line_label} (n={len(curves)})", **style)
            ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel(x)
    ax.set_ylabel(metric if stat == "mean" else f"{metric} ({stat})")
    ax.set_title(title or metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def final_value(run: RunData, metric: str, last: int, x: str | None = None) -> float | None:
    """Mean of the run's last ``last`` values of ``metric``; with a counter ``x``, of the last ``last`` points
    of its curve against ``x`` (:meth:`RunData.series`: values logged at one ``x`` are one point, as
    ``xfer compare`` counts them)."""
    if x is None:
        values = [r[metric] for r in run.rows if r.get(metric) is not None]
    else:
        values = list(run.series(metric, x)[1])
    return float(np.mean(values[-last:])) if values else None


def final_table(runs: list[RunData], metric: str, group_by: str, rows_by: str, last: int = 1,
                warn: Warn | None = None, x: str | None = None
                ) -> tuple[list[str], list[str], dict[tuple[str, str], list[float]]]:
    """Cells ``(row, column) → per-seed final values`` (mean of each run's last ``last`` values, or points
    against the counter ``x``: ``"a,b"`` reads each run against the first it logs), one run per seed
    (duplicates are warned about, the newest finished one is kept)."""
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    if x is not None:  # as compare: the counter checked, runs without a curve dropped before choosing
        runs = runs_with_curves(runs, metric, x)
    for run in one_run_per_seed(runs, (rows_by, group_by), warn):
        value = final_value(run, metric, last, x)
        if value is not None:
            cells[(run.key(rows_by), run.key(group_by))].append(value)
    if not cells:
        raise XferError(f"no run logged {metric!r}")
    rows = sorted({r for r, _ in cells})
    cols = sorted({c for _, c in cells})
    return rows, cols, cells


def _summary(values: list[float], stat: str, ci: str, reps: int, seed: int) -> dict[str, float]:
    scores = as_scores(values)
    out = {stat: float(aggregate(scores, check_stat(stat))), "n": float(len(values))}
    if stat == "mean" and ci == "none":
        out["std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    if ci == "bootstrap":
        low, high = interval(scores, check_stat(stat), reps, seed)
        out["ci_low"], out["ci_high"] = float(low), float(high)
    return out


def format_table(rows: list[str], cols: list[str], cells: dict[tuple[str, str], list[float]],
                 fmt: str, rows_by: str, stat: str = "mean", ci: str = "none", reps: int = DEFAULT_REPS,
                 seed: int = 0) -> str:
    """Markdown (``value ± std (n=N)`` or ``value [low, high] (n=N)``) or CSV of the cells."""
    check_stat(stat)
    if ci not in ("none", "bootstrap"):
        raise XferError(f"unknown --ci {ci!r} for a table", hint="use --ci bootstrap or leave it out")
    summary = {key: _summary(values, stat, ci, reps, seed) for key, values in cells.items() if values}
    fields = [stat, *(["std"] if stat == "mean" and ci == "none" else []),
              *(["ci_low", "ci_high"] if ci == "bootstrap" else []), "n"]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([rows_by, *(f"{c} {f}" for c in cols for f in fields)])
        for r in rows:
            line: list[Any] = [r]
            for c in cols:
                s = summary.get((r, c))
                line += [(int(s[f]) if f == "n" else s[f]) if s else ("" if f != "n" else 0) for f in fields]
            writer.writerow(line)
        return buffer.getvalue()

    def cell(r: str, c: str) -> str:
        s = summary.get((r, c))
        if not s:
            return "-"
        spread = (f" ± {s['std']:.2g}" if "std" in s
                  else f" [{s['ci_low']:.3g}, {s['ci_high']:.3g}]" if "ci_low" in s else "")
        return f"{s[stat]:.3g}{spread} (n={int(s['n'])})"

    header = f"| {rows_by} | " + " | ".join(cols) + " |"
    rule = "|" + "---|" * (len(cols) + 1)
    body = [f"| {r} | " + " | ".join(cell(r, c) for c in cols) + " |" for r in rows]
    return "\n".join([header, rule, *body]) + "\n"
