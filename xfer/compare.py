"""``xfer compare``: groups of runs (``--by method``) compared the way Agarwal et al. (NeurIPS 2021) ask.

For every group: the IQM over seeds × tasks with its 95 % stratified-bootstrap interval, at the final point
(each run's mean of its last ``K`` points of the curve against ``x``, where evaluations logged at one ``x``
are one point, their mean: CoWorld's two evaluations of one target agent) and as the normalised area under
the curve. For every pair
``X, Y`` (in the order the groups first appear): ``IQM(X) − IQM(Y)`` with its interval (both groups
resampled independently, within tasks) and the probability of improvement ``P(X > Y)``
(:mod:`xfer.stats`).

AUC: each run's curve is its metric against the counter ``x``, linear between logged points; all runs are
cut to the common range ``[latest first x, earliest last x]`` and the integral over it is divided by its
length, so the AUC is the curve's mean height in the metric's own units (exact for the piecewise-linear
curve, no resampling grid).

One group (the seeds of one method) gets its row alone, with no pairs. Refused (unless ``force``): groups
trained for different budgets (final ``x`` differs) and groups with fewer than two seeds per task; a
warning for fewer than three. ``upto`` compares at a smaller budget: every row
past ``x = upto`` is dropped first (runs trained longer are cut there; the final point is then the last
value logged at or before it), so a 100k-step baseline compares with a 50k-step method at 50k.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from xfer.errors import XferError
from xfer.results import RunData, matching_metrics, one_run_per_seed, runs_with_curves
from xfer.stats import DEFAULT_REPS, aggregate, difference_interval, interval, probability_of_improvement

Warn = Callable[[str], None]
MEASURES = ("final", "auc")


def normalised_auc(xs: np.ndarray, ys: np.ndarray, start: float, end: float) -> float:
    """Mean height of the linear interpolation of ``(xs, ys)`` over ``[start, end]`` (exact trapezoids)."""
    if end <= start:
        return float(np.interp(end, xs, ys))
    grid = np.unique(np.concatenate([[start, end], xs[(xs > start) & (xs < end)]]))
    heights = np.interp(grid, xs, ys)
    return float(np.sum((heights[1:] + heights[:-1]) / 2 * np.diff(grid)) / (end - start))


def _grouped(runs: list[RunData], by: str, rows_by: str) -> dict[str, dict[str, list[RunData]]]:
    groups: dict[str, dict[str, list[RunData]]] = {}
    for run in runs:
        groups.setdefault(run.key(by), defaultdict(list))[run.key(rows_by)].append(run)
    if not groups:
        raise XferError("no run has a point to compare", hint="check --metric and --upto")
    return groups


def _check_shape(groups: dict[str, dict[str, list[RunData]]], rows_by: str, force: bool,
                 warn: Warn | None) -> list[str]:
    tasks = sorted(next(iter(groups.values())))
    for name, by_task in groups.items():
        if sorted(by_task) != tasks:
            raise XferError(f"group {name!r} has {rows_by} {', '.join(sorted(by_task))} but another has "
                            f"{', '.join(tasks)}", hint=f"compare runs on the same {rows_by} values")
        counts = {task: len(members) for task, members in by_task.items()}
        if len(set(counts.values())) > 1:
            raise XferError(f"group {name!r} has unequal seeds per {rows_by}: "
                            + ", ".join(f"{t}: {n}" for t, n in counts.items()),
                            hint="the stratified bootstrap needs the same number of seeds on every task")
        seeds = counts[tasks[0]]
        if seeds < 2 and not force:
            raise XferError(f"group {name!r} has {seeds} seed per {rows_by}: no interval from one seed",
                            hint="run more seeds, or pass --force to print it anyway")
        if seeds < 3 and warn is not None:
            warn(f"warning: group {name!r} has only {seeds} seeds per {rows_by}; its intervals are wide")
    return tasks


def _check_budget(curves: dict[str, list[np.ndarray]], x: str, force: bool) -> None:
    ends = {name: sorted({float(xs[-1]) for xs in xss}) for name, xss in curves.items()}
    if len({e for values in ends.values() for e in values}) > 1 and not force:
        said = "; ".join(f"{name} ends at {x}=" + ", ".join(f"{e:g}" for e in values)
                         for name, values in ends.items())
        raise XferError(f"the runs have different budgets ({said})",
                        hint="compare runs of equal length, or pass --force (AUC then over the common range)")


def compare_runs(runs: list[RunData], metric: str, by: str = "method", rows_by: str = "target.task",
                 x: str = "env_steps", last: int = 1, reps: int = DEFAULT_REPS, seed: int = 0,
                 force: bool = False, warn: Warn | None = None, upto: float | None = None) -> dict[str, Any]:
    """The comparison as a plain dict (what ``--format json`` prints)."""
    if matching_metrics(runs, metric) != [metric]:
        raise XferError(f"compare takes one metric, not the pattern {metric!r}", hint="name it exactly")
    runs = runs_with_curves(runs, metric, x, upto)
    groups = _grouped(one_run_per_seed(runs, (by, rows_by), warn), by, rows_by)
    tasks = _check_shape(groups, rows_by, force, warn)
    series = {name: [[run.series(metric, x) for run in by_task[t]] for t in tasks]
              for name, by_task in groups.items()}
    _check_budget({n: [xs for per_task in s for xs, _ in per_task] for n, s in series.items()}, x, force)
    all_xs = [xs for s in series.values() for per_task in s for xs, _ in per_task]
    start, end = max(float(xs[0]) for xs in all_xs), min(float(xs[-1]) for xs in all_xs)
    scores: dict[str, dict[str, np.ndarray]] = {}
    for name in groups:
        final = [[float(np.mean(ys[-last:])) for _, ys in per_task] for per_task in series[name]]
        auc = [[normalised_auc(xs, ys, start, end) for xs, ys in per_task] for per_task in series[name]]
        scores[name] = {"final": np.array(final, dtype=float).T, "auc": np.array(auc, dtype=float).T}
    report: dict[str, Any] = {
        "metric": metric, "by": by, "rows": rows_by, "tasks": tasks, "x": x, "last": last, "upto": upto,
        "auc_range": [start, end], "reps": reps, "seed": seed, "confidence": 0.95, "groups": [], "pairs": []}
    for name, s in scores.items():
        entry: dict[str, Any] = {"name": name, "seeds": int(s["final"].shape[0]), "tasks": len(tasks)}
        for m in MEASURES:
            low, high = interval(s[m], "iqm", reps, seed)
            entry[m] = {"iqm": float(aggregate(s[m], "iqm")), "ci": [float(low), float(high)]}
        report["groups"].append(entry)
    for a, b in itertools.combinations(scores, 2):
        pair: dict[str, Any] = {"x": a, "y": b}
        for m in MEASURES:
            sa, sb = scores[a][m], scores[b][m]
            pair[m] = {"iqm_difference": float(aggregate(sa, "iqm") - aggregate(sb, "iqm")),
                       "ci": list(difference_interval(sa, sb, "iqm", reps, seed)),
                       "p_improvement": probability_of_improvement(sa, sb)}
        report["pairs"].append(pair)
    return report


def _ci(low: float, high: float) -> str:
    return f"[{low:.4g}, {high:.4g}]"


def format_report(report: dict[str, Any], fmt: str = "md") -> str:
    if fmt == "json":
        return json.dumps(report, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["kind", "x", "y", "measure", "iqm", "ci_low", "ci_high", "p_improvement", "seeds"])
        for g in report["groups"]:
            for m in MEASURES:
                writer.writerow(["group", g["name"], "", m, g[m]["iqm"], *g[m]["ci"], "", g["seeds"]])
        for p in report["pairs"]:
            for m in MEASURES:
                writer.writerow(["pair", p["x"], p["y"], m, p[m]["iqm_difference"], *p[m]["ci"],
                                 p[m]["p_improvement"], ""])
        return buffer.getvalue()
    if fmt != "md":
        raise XferError(f"unknown format {fmt!r}", hint="use --format md, csv or json")
    start, end = report["auc_range"]
    lines = [f"{report['metric']} by {report['by']} over {len(report['tasks'])} {report['rows']} "
             f"({', '.join(report['tasks'])}); final = mean of the last {report['last']} value(s)"
             + (f" at {report['x']} ≤ {report['upto']:g}" if report.get("upto") is not None else "") + "; "
             f"AUC = mean of the curve over {report['x']} in [{start:g}, {end:g}]; 95 % stratified-bootstrap "
             f"intervals ({report['reps']} resamples, seed {report['seed']})", "",
             f"| {report['by']} | seeds | final IQM [95 % CI] | AUC IQM [95 % CI] |", "|---|---|---|---|"]
    for g in report["groups"]:
        lines.append(f"| {g['name']} | {g['seeds']} × {g['tasks']} | {g['final']['iqm']:.4g} "
                     f"{_ci(*g['final']['ci'])} | {g['auc']['iqm']:.4g} {_ci(*g['auc']['ci'])} |")
    if report["pairs"]:
        lines += ["", "| X − Y | final: IQM difference [95 % CI] | final: P(X > Y) | AUC: IQM difference "
                  "[95 % CI] | AUC: P(X > Y) |", "|---|---|---|---|---|"]
    for p in report["pairs"]:
        cells = [f"{p[m]['iqm_difference']:.4g} {_ci(*p[m]['ci'])} | {p[m]['p_improvement']:.3f}"
                 for m in MEASURES]
        lines.append(f"| {p['x']} − {p['y']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
