"""Sweeps (grid expansion, failures, resume, Ray) and plots/tables from metrics.jsonl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from xfer.errors import XferError
from xfer.plot import final_table, find_runs, format_table, mean_band, plot_curves
from xfer.sweep import Sweep, expand_grid, run_id


def test_expand_grid_is_the_product_with_yaml_values() -> None:
    combos = expand_grid(["seed=0,1,2", "target.task=drawer-open,coffee-push"])
    assert len(combos) == 6
    assert combos[0] == {"seed": 0, "target.task": "drawer-open"}
    assert {c["seed"] for c in combos} == {0, 1, 2} and isinstance(combos[0]["seed"], int)
    assert run_id(combos[-1]) == "seed=2__target.task=coffee-push"
    with pytest.raises(XferError, match="key.path=v1,v2"):
        expand_grid(["seed"])


def sweep_recipe(tmp_path: Path) -> Path:
    recipe = {"method": "fake-linear", "device": "cpu", "target": {"suite": "fake", "task": "reach"},
              "logging": {"tensorboard": False, "live": False, "every": 1},
              "checkpoint": {"every": 10}, "fake-linear": {"steps": 20}}
    path = tmp_path / "sw.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def xfer(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xfer.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=cwd, timeout=300)


def test_local_sweep_with_a_failure_then_resume(tmp_path: Path, fake_plugin_env: dict) -> None:
    result = xfer(["sweep", str(sweep_recipe(tmp_path)), "--grid", "fake-linear.fail_at=null,5",
                   "--max-parallel", "2", "--root", str(tmp_path / "sweeps")], fake_plugin_env, tmp_path)
    assert result.returncode == 1, result.stderr  # one run failed: the sweep says so
    sweepdir = next((tmp_path / "sweeps" / "sw").iterdir())
    sweep = Sweep.load(sweepdir)
    status = {r.id: r for r in sweep.runs}
    assert status["fake-linear.fail_at=None"].status == "done"
    failed = status["fake-linear.fail_at=5"]
    assert failed.status == "failed" and "failed on purpose" in failed.error
    done_dir = sweep.rundir(status["fake-linear.fail_at=None"])
    assert json.loads((done_dir / "run.json").read_text())["status"] == "done"
    assert yaml.safe_load((done_dir / "recipe.yaml").read_text())["fake-linear"]["fail_at"] is None
    done_mtime = (done_dir / "metrics.jsonl").stat().st_mtime

    # fix the failing run's setting in place, then resume: the finished run is skipped
    failed.overrides = {"fake-linear.fail_at": None}
    sweep.save()
    result = xfer(["sweep", "--resume", str(sweepdir)], fake_plugin_env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(r.status == "done" for r in Sweep.load(sweepdir).runs)
    assert (done_dir / "metrics.jsonl").stat().st_mtime == done_mtime


def test_ray_sweep_on_a_local_instance(tmp_path: Path, fake_plugin_env: dict) -> None:
    pytest.importorskip("ray")
    result = xfer(["sweep", str(sweep_recipe(tmp_path)), "--grid", "seed=0,1", "--backend", "ray",
                   "--root", str(tmp_path / "sweeps")], fake_plugin_env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    sweep = Sweep.load(next((tmp_path / "sweeps" / "sw").iterdir()))
    assert [r.status for r in sweep.runs] == ["done", "done"]


def synthetic_runs(root: Path) -> None:
    """Two methods × two tasks × three seeds with known final returns."""
    for method, offset in (("vid2act", 100.0), ("dreamer", 0.0)):
        for task in ("drawer-open", "coffee-push"):
            for seed in range(3):
                rundir = root / f"{method}-{task}-{seed}"
                rundir.mkdir(parents=True)
                recipe = {"method": method, "seed": seed, "target": {"suite": "metaworld", "task": task}}
                (rundir / "recipe.yaml").write_text(yaml.safe_dump(recipe))
                rows = [{"step": s, "env_steps": s * 10, "eval/return": offset + seed * s / 10,
                         "vid2act/weight/push": 0.5 + 0.01 * s} for s in range(0, 11)]
                (rundir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_table_numbers_are_mean_and_std_over_seeds(tmp_path: Path) -> None:
    synthetic_runs(tmp_path)
    runs = find_runs([tmp_path])
    assert len(runs) == 12
    rows, cols, cells = final_table(runs, "eval/return", "method", "target.task")
    assert rows == ["coffee-push", "drawer-open"] and cols == ["dreamer", "vid2act"]
    assert sorted(cells[("drawer-open", "vid2act")]) == [100.0, 101.0, 102.0]
    md = format_table(rows, cols, cells, "md", "target.task")
    assert "| drawer-open | 1 ± 1 (n=3) | 101 ± 1 (n=3) |" in md
    csv = format_table(rows, cols, cells, "csv", "target.task").splitlines()
    assert csv[1].split(",")[:4] == ["coffee-push", "1.0", "1.0", "3"]


def test_mean_band_on_known_curves() -> None:
    x = np.array([0.0, 10.0])
    grid, mean, half = mean_band([(x, np.array([0.0, 10.0])), (x, np.array([2.0, 12.0]))], points=3)
    assert np.allclose(grid, [0, 5, 10]) and np.allclose(mean, [1, 6, 11])
    assert np.allclose(half, 1.96 * np.sqrt(2) / np.sqrt(2))


def test_plot_writes_a_non_blank_png(tmp_path: Path) -> None:
    synthetic_runs(tmp_path / "runs")
    runs = find_runs([tmp_path / "runs"])
    out = plot_curves(runs, "eval/return", "env_steps", "method", tmp_path / "c.png")
    weights = plot_curves(find_runs([tmp_path / "runs"]), "vid2act/weight/*", "env_steps", "method",
                          tmp_path / "w.png")
    import matplotlib.image as mpimg

    for path in (out, weights):
        image = mpimg.imread(path)
        assert image.shape[0] > 100 and image.std() > 0.05, "the figure is blank"


def test_cli_table_and_unknown_metric(tmp_path: Path) -> None:
    synthetic_runs(tmp_path / "runs")
    result = xfer(["table", str(tmp_path / "runs"), "--format", "csv"], {}, tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("target.task,")
    result = xfer(["plot", str(tmp_path / "runs"), "--metric", "eval/retrun"], {}, tmp_path)
    assert result.returncode == 2 and "no metric matches 'eval/retrun'" in result.stderr


def test_sweep_table_prints_every_status_including_unstyled_ones(tmp_path: Path) -> None:
    from rich.console import Console

    from xfer.sweep import SweepRun
    from xfer.sweep_table import sweep_table

    runs = [SweepRun(f"seed={i}", {"seed": i}) for i in range(3)]
    for run, status in zip(runs, ("in use", "done", "[bold]odd"), strict=True):
        run.status = status
    console = Console(width=200, record=True)
    console.print(sweep_table(Sweep(tmp_path, "r.yaml", [], [], runs)))  # raised MarkupError for "in use"
    text = console.export_text()
    assert "in use" in text and "done" in text and "[bold]odd" in text


def test_plot_draws_a_list_of_metrics_against_either_counter(tmp_path: Path, monkeypatch) -> None:
    """``--metric a,b`` draws both per group (colour per group, style per metric) and ``--x a,b`` reads each
    run against the first counter it logs (CoWorld's target_updates beside a baseline's updates)."""
    for method, counter, slope in (("coworld", "target_updates", 2.0), ("dreamer", "updates", 1.0)):
        for seed in range(2):
            rundir = tmp_path / f"{method}-{seed}"
            rundir.mkdir()
            recipe = {"method": method, "seed": seed, "target": {"suite": "dmc", "task": "cartpole-swingup"}}
            (rundir / "recipe.yaml").write_text(yaml.safe_dump(recipe))
            rows = [{"step": u, counter: u, "value/estimate": slope * u, "value/true_return": 10.0}
                    for u in (0, 50, 100)]
            (rundir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    import matplotlib.axes

    drawn: list[tuple[str, str, str, np.ndarray, np.ndarray]] = []
    original = matplotlib.axes.Axes.plot

    def spy(self, x, y, **kwargs):
        drawn.append((kwargs["label"], kwargs.get("color"), kwargs.get("linestyle"), np.asarray(x),
                      np.asarray(y)))
        return original(self, x, y, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    plot_curves(find_runs([tmp_path]), "value/estimate,value/true_return", "target_updates,updates", "method",
                tmp_path / "v.png")
    labels = [d[0] for d in drawn]
    assert labels == ["coworld: estimate (n=2)", "coworld: true_return (n=2)", "dreamer: estimate (n=2)",
                      "dreamer: true_return (n=2)"]
    assert drawn[0][1] == drawn[1][1] != drawn[2][1] == drawn[3][1]  # a colour per group
    assert (drawn[0][2], drawn[1][2]) == ("-", "--")  # a line style per metric
    x, y = drawn[0][3], drawn[0][4]
    assert x[0] == 0 and x[-1] == 100 and np.allclose(y, 2.0 * x)
    assert np.allclose(drawn[2][4], drawn[2][3]) and np.allclose(drawn[3][4], 10.0)


def test_either_counter_skips_runs_without_the_metrics_and_reads_any_listed_one(tmp_path: Path) -> None:
    from xfer.results import RunData, with_counter

    empty = RunData(tmp_path / "a", {}, [])
    second_only = RunData(tmp_path / "b", {}, [{"updates": 5, "value/true_return": 1.0}])
    metrics = ["value/estimate", "value/true_return"]
    out = with_counter([empty, second_only], metrics, "target_updates,updates")
    assert out[0].rows == [] and out[1].rows[0]["target_updates,updates"] == 5
    with pytest.raises(XferError, match="none of the counters"):
        with_counter([RunData(tmp_path / "c", {}, [{"step": 1, "value/estimate": 1.0}])], ["value/estimate"],
                     "target_updates,updates")
