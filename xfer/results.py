"""Run directories read back for plots, tables and comparisons: finding them, their metric series against a
counter, and one run per seed.

A run directory holds ``recipe.yaml`` and ``metrics.jsonl`` (and ``run.json`` with its status). Every line of
``metrics.jsonl`` has ``step`` and the counters the method passed (``env_steps``, ``updates``, ...: the keys
without a ``/``) next to the metrics (``eval/return``, ...).
"""

from __future__ import annotations

import fnmatch
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from xfer.errors import XferError
from xfer.run.logger import read_metrics

# recipe keys that say where or how a run was written, not what it computed
_BOOKKEEPING = {"name", "logdir", "device", "datadir", "seed"}


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

    @property
    def seed(self) -> str:
        """The recipe's ``seed``; a run without one counts as its own seed."""
        seed = self.recipe.get("seed")
        return f"(none: {self.path})" if seed is None else str(seed)

    def series(self, metric: str, x: str) -> tuple[np.ndarray, np.ndarray]:
        """``(xs, values)`` of the rows that log both the counter ``x`` and the metric. Consecutive rows at
        the same ``x`` (the counter did not move between them: CoWorld evaluates its target agent twice
        per source phase at one ``target_updates``) become one point, their mean."""
        pts = [(r[x], r[metric]) for r in self.rows if r.get(metric) is not None and r.get(x) is not None]
        if not pts:
            return np.zeros(0), np.zeros(0)
        xs, ys = np.array(pts, dtype=float).T
        starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
        if len(starts) < len(xs):
            ys = np.add.reduceat(ys, starts) / np.diff(np.r_[starts, len(xs)])
            xs = xs[starts]
        return xs, ys

    def status(self) -> dict[str, Any]:
        path = self.path / "run.json"
        try:
            return json.loads(path.read_text()) if path.exists() else {}
        except (OSError, json.JSONDecodeError):
            return {}


def find_runs(paths: Iterable[Path]) -> list[RunData]:
    """Every run directory (``recipe.yaml`` + ``metrics.jsonl``) at or below the given paths."""
    runs: list[RunData] = []
    paths = list(paths)
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


def check_counter(runs: list[RunData], metrics: list[str], x: str) -> None:
    """Refuse an x-axis counter that no row logging one of ``metrics`` carries, naming those that exist."""
    counters: set[str] = set()
    for run in runs:
        for row in run.rows:
            if any(row.get(m) is not None for m in metrics):
                counters |= {k for k, v in row.items() if "/" not in k and isinstance(v, int | float)}
    if x not in counters:
        raise XferError(f"no run logs the counter {x!r} next to {', '.join(metrics)}",
                        hint="counters in these runs: " + ", ".join(sorted(counters)) + " (use --x NAME)")


def _newest_finished(run: RunData) -> tuple[bool, float, float]:
    info = run.status()
    stamp = info.get("finished") or info.get("started") or 0.0
    return info.get("status") == "done", float(stamp), (run.path / "metrics.jsonl").stat().st_mtime


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_flat(value, f"{prefix}{key}."))
    return out


def _differing(runs: list[RunData]) -> list[str]:
    flats = [_flat({k: v for k, v in run.recipe.items() if k not in _BOOKKEEPING}) for run in runs]
    keys = sorted(set().union(*flats))
    return [k.rstrip(".") for k in keys if len({repr(f.get(k)) for f in flats}) > 1]


def one_run_per_seed(runs: list[RunData], keys: Sequence[str],
                     warn: Callable[[str], None] | None = None) -> list[RunData]:
    """One run for each seed within each combination of the recipe ``keys`` (a table cell, a curve).

    Several runs of one seed there are duplicates, not more seeds: one line names them and the newest
    finished one (``run.json`` status ``done``, latest ``finished`` time) is kept.
    """
    by_seed: dict[tuple[str, ...], list[RunData]] = defaultdict(list)
    for run in runs:
        by_seed[(*(run.key(k) for k in keys), run.seed)].append(run)
    kept: list[RunData] = []
    for key, members in by_seed.items():
        best = max(members, key=_newest_finished)
        kept.append(best)
        if len(members) > 1 and warn is not None:
            where = ", ".join(f"{k}={v}" for k, v in zip(keys, key, strict=False))
            differ = _differing(members)
            note = f"; their recipes differ in {', '.join(differ[:5])}" if differ else ""
            done = best.status().get("status") == "done"
            why = "the newest finished" if done else "the newest; none finished"
            warn(f"warning: {len(members)} runs of seed {key[-1]} ({where}): "
                 + ", ".join(str(m.path) for m in members) + f"; counting one, {best.path} ({why}){note}")
    order = {id(run): i for i, run in enumerate(runs)}
    return sorted(kept, key=lambda run: order[id(run)])


def with_counter(runs: list[RunData], metrics: Sequence[str], x: str) -> list[RunData]:
    """``x`` = ``"a,b"``: each run reads its curves against the first of the counters it logs next to any of
    ``metrics`` (e.g. CoWorld's ``target_updates`` and an offline baseline's ``updates``), under the name
    ``x``; a single name is returned as is. A run that logs none of ``metrics`` is left as it is (it has no
    curve to draw); one that logs them next to none of the counters is an error."""
    names = [name.strip() for name in x.split(",")]
    if len(names) == 1:
        return runs
    out = []
    for run in runs:
        logged = [row for row in run.rows if any(row.get(m) is not None for m in metrics)]
        if not logged:
            out.append(run)
            continue
        name = next((n for n in names if any(row.get(n) is not None for row in logged)), None)
        if name is None:
            raise XferError(f"run {run.path} logs none of the counters {x!r} next to {', '.join(metrics)}")
        rows = [{**row, x: row[name]} if row.get(name) is not None else row for row in run.rows]
        out.append(RunData(run.path, run.recipe, rows))
    return out


def cut_at(run: RunData, x: str, upto: float) -> RunData:
    """``run`` without the rows whose counter ``x`` is past ``upto`` (rows without ``x`` are kept)."""
    rows = [row for row in run.rows if row.get(x) is None or float(row[x]) <= upto]
    return RunData(run.path, run.recipe, rows)


def runs_with_curves(runs: list[RunData], metric: str, x: str, upto: float | None = None) -> list[RunData]:
    """The runs that have a curve of ``metric`` against the counter ``x`` (``"a,b"``: each run's first logged,
    :func:`with_counter`; an unknown counter refused, :func:`check_counter`), cut at ``upto`` when given —
    before one run per seed is chosen, so a newest duplicate without the curve does not hide an older one."""
    runs = with_counter(runs, [metric], x)
    check_counter(runs, [metric], x)
    if upto is not None:
        runs = [cut_at(run, x, upto) for run in runs]
    return [run for run in runs if len(run.series(metric, x)[0])]
