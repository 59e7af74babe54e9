"""xfer compare / table / plot statistics on run directories written by hand, checked against numbers
computed here: IQM by hand, P(X > Y) by a double loop, AUC of straight-line curves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("rliable")

from xfer.compare import compare_runs, normalised_auc  # noqa: E402
from xfer.errors import XferError  # noqa: E402
from xfer.plot import final_table, find_runs, format_table, stat_band  # noqa: E402
from xfer.stats import aggregate, interval  # noqa: E402

# final returns per task and seed; each run's curve is the straight line 0 -> final over env_steps 0..100
FINALS = {"vid2act": {"drawer-open": [10.0, 50.0, 30.0, 70.0], "coffee-push": [20.0, 20.0, 90.0, 40.0]},
          "dreamer": {"drawer-open": [20.0, 40.0, 60.0], "coffee-push": [10.0, 30.0, 44.0]}}


def write_run(rundir: Path, method: str, task: str, seed: int, final: float, steps: int = 10,
              status: dict | None = None) -> Path:
    rundir.mkdir(parents=True)
    recipe = {"method": method, "seed": seed, "target": {"suite": "metaworld", "task": task}}
    (rundir / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    rows = [{"step": s, "env_steps": s * 10, "eval/return": final * s / steps} for s in range(steps + 1)]
    (rundir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if status is not None:
        (rundir / "run.json").write_text(json.dumps(status))
    return rundir


def two_sweeps(root: Path) -> tuple[Path, Path]:
    for method, by_task in FINALS.items():
        for task, finals in by_task.items():
            for seed, final in enumerate(finals):
                write_run(root / method / f"{task}-{seed}", method, task, seed, final)
    return root / "vid2act", root / "dreamer"


def by_hand_iqm(values: list[float]) -> float:
    ordered = sorted(values)
    cut = len(ordered) // 4
    return float(np.mean(ordered[cut:len(ordered) - cut]))


def by_hand_p_improvement(x: dict[str, list[float]], y: dict[str, list[float]]) -> float:
    per_task = []
    for task in x:
        wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in x[task] for b in y[task])
        per_task.append(wins / (len(x[task]) * len(y[task])))
    return float(np.mean(per_task))


def test_normalised_auc_of_piecewise_linear_curves() -> None:
    xs, ys = np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 10.0])
    assert normalised_auc(xs, ys, 0.0, 20.0) == pytest.approx((50 + 100) / 20)
    assert normalised_auc(xs, ys, 5.0, 20.0) == pytest.approx((7.5 * 5 + 100) / 15)


def test_compare_numbers_against_hand_computed_values(tmp_path: Path) -> None:
    report = compare_runs(find_runs(two_sweeps(tmp_path)), "eval/return", reps=500, seed=1)
    groups = {g["name"]: g for g in report["groups"]}
    assert [g["name"] for g in report["groups"]] == ["vid2act", "dreamer"]  # order of the PATHS
    assert groups["vid2act"]["seeds"] == 4 and groups["dreamer"]["seeds"] == 3
    assert report["auc_range"] == [0.0, 100.0]
    for name, by_task in FINALS.items():
        pooled = [v for values in by_task.values() for v in values]
        assert groups[name]["final"]["iqm"] == pytest.approx(by_hand_iqm(pooled))
        assert groups[name]["auc"]["iqm"] == pytest.approx(by_hand_iqm(pooled) / 2)  # ramp: mean = final/2
        low, high = groups[name]["final"]["ci"]
        assert min(pooled) <= low <= groups[name]["final"]["iqm"] <= high <= max(pooled)
    (pair,) = report["pairs"]
    assert (pair["x"], pair["y"]) == ("vid2act", "dreamer")
    diff = by_hand_iqm([v for vs in FINALS["vid2act"].values() for v in vs]) - by_hand_iqm(
        [v for vs in FINALS["dreamer"].values() for v in vs])
    assert pair["final"]["iqm_difference"] == pytest.approx(diff)
    assert pair["final"]["ci"][0] < diff < pair["final"]["ci"][1]
    p = by_hand_p_improvement(FINALS["vid2act"], FINALS["dreamer"])
    assert 0.3 < p < 0.7  # overlapping groups: the number is not a trivial 0 or 1
    assert pair["final"]["p_improvement"] == pytest.approx(p)
    assert pair["auc"]["p_improvement"] == pytest.approx(p)  # AUC = final/2 keeps every order


def xfer(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xfer.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=cwd, timeout=300)


def test_cli_compare_on_two_sweeps_prints_iqm_ci_and_p_improvement(tmp_path: Path) -> None:
    a, b = two_sweeps(tmp_path)
    result = xfer(["compare", str(a), str(b), "--metric", "eval/return", "--by", "method", "--reps", "300",
                   "--format", "json"], tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["pairs"][0]["final"]["p_improvement"] == pytest.approx(
        by_hand_p_improvement(FINALS["vid2act"], FINALS["dreamer"]))
    result = xfer(["compare", str(a), str(b), "--reps", "300"], tmp_path)
    assert result.returncode == 0, result.stderr
    iqm = by_hand_iqm([v for vs in FINALS["vid2act"].values() for v in vs])
    assert f"| vid2act | 4 × 2 | {iqm:.4g} [" in result.stdout
    assert "| vid2act − dreamer |" in result.stdout and "P(X > Y)" in result.stdout


def test_compare_refuses_unequal_budgets_and_single_seeds(tmp_path: Path) -> None:
    write_run(tmp_path / "a0", "vid2act", "t", 0, 5.0)
    write_run(tmp_path / "a1", "vid2act", "t", 1, 6.0)
    write_run(tmp_path / "b0", "dreamer", "t", 0, 4.0, steps=8)  # ends at env_steps 80, not 100
    write_run(tmp_path / "b1", "dreamer", "t", 1, 3.0, steps=8)
    with pytest.raises(XferError, match="different budgets .*dreamer ends at env_steps=80"):
        compare_runs(find_runs([tmp_path]), "eval/return", reps=100)
    warnings: list[str] = []
    forced = compare_runs(find_runs([tmp_path]), "eval/return", reps=100, force=True, warn=warnings.append)
    assert forced["auc_range"] == [0.0, 80.0]
    assert any("only 2 seeds" in w for w in warnings)
    result = xfer(["compare", str(tmp_path / "a0"), str(tmp_path / "b0"), "--force"], tmp_path)
    assert result.returncode == 0, result.stderr  # one seed each, forced: printed, with the warning
    result = xfer(["compare", str(tmp_path / "a0"), str(tmp_path / "a1"), str(tmp_path / "b0")], tmp_path)
    assert result.returncode == 2 and "has 1 seed per target.task" in result.stderr
    assert "Traceback" not in result.stderr


def test_upto_compares_longer_runs_at_the_shorter_budget(tmp_path: Path) -> None:
    """Straight lines 0 -> final over env_steps 0..100 (vid2act) and 0..80 (dreamer): cut at 80, vid2act's
    final point is 0.8 x its final, its AUC the line's mean over [0, 80], i.e. 0.4 x its final."""
    for seed, final in enumerate([5.0, 6.0, 10.0]):
        write_run(tmp_path / f"a{seed}", "vid2act", "t", seed, final)
        write_run(tmp_path / f"b{seed}", "dreamer", "t", seed, final / 2, steps=8)
    report = compare_runs(find_runs([tmp_path]), "eval/return", reps=100, upto=80)
    vid2act = next(g for g in report["groups"] if g["name"] == "vid2act")
    assert report["auc_range"] == [0.0, 80.0] and report["upto"] == 80
    assert vid2act["final"]["iqm"] == pytest.approx(by_hand_iqm([4.0, 4.8, 8.0]))
    assert vid2act["auc"]["iqm"] == pytest.approx(by_hand_iqm([2.0, 2.4, 4.0]))
    with pytest.raises(XferError, match="different budgets"):  # 90 is past dreamer's end: not one budget
        compare_runs(find_runs([tmp_path]), "eval/return", reps=100, upto=90)
    result = xfer(["compare", str(tmp_path), "--upto", "80"], tmp_path)
    assert result.returncode == 0 and "at env_steps ≤ 80" in result.stdout, result.stderr


def test_x_takes_the_first_counter_each_run_logs(tmp_path: Path) -> None:
    """CoWorld's evaluations count target updates as ``target_updates`` (its ``updates`` are the source's),
    an offline baseline's as ``updates``: ``--x target_updates,updates`` reads each against its own."""
    for seed, final in enumerate([4.0, 6.0, 8.0]):
        metrics = write_run(tmp_path / f"b{seed}", "dreamer", "t", seed, final) / "metrics.jsonl"
        rows = [json.loads(line) for line in metrics.read_text().splitlines()]  # add updates = 10 x step
        metrics.write_text(
            "".join(json.dumps({**r, "updates": r["step"] * 10}) + "\n" for r in rows))
        rundir = tmp_path / f"c{seed}"
        rundir.mkdir()
        (rundir / "recipe.yaml").write_text(yaml.safe_dump({"method": "coworld", "seed": seed,
                                                            "target": {"suite": "metaworld", "task": "t"}}))
        rows = [{"step": s * 7, "env_steps": s * 7, "updates": s, "target_updates": s * 10,
                 "eval/return": 2 * final * s / 10} for s in range(11)]
        (rundir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(XferError, match="different budgets"):  # env_steps: 100 against 70
        compare_runs(find_runs([tmp_path]), "eval/return", reps=100)
    report = compare_runs(find_runs([tmp_path]), "eval/return", reps=100, x="target_updates,updates")
    assert report["auc_range"] == [0.0, 100.0]
    pair = report["pairs"][0]
    assert {pair["x"], pair["y"]} == {"coworld", "dreamer"}
    sign = 1 if pair["x"] == "coworld" else -1
    assert sign * pair["final"]["iqm_difference"] == pytest.approx(6.0)  # IQM 12 against 6
    with pytest.raises(XferError, match="logs none of the counters"):
        compare_runs(find_runs([tmp_path]), "eval/return", reps=100, x="frames,target_updates")


def test_points_at_one_counter_value_are_averaged(tmp_path: Path) -> None:
    """Two evaluations at one ``target_updates`` (CoWorld evaluates its unchanged target agent twice per
    source phase) are one point of the curve, their mean: AUC by hand over the points (0, 0), (10, 30),
    (20, 50) = (15 + 40) / 2 = 27.5."""
    from xfer.results import RunData

    rows = [{"target_updates": 0, "eval/return": 0.0}, {"target_updates": 10, "eval/return": 20.0},
            {"target_updates": 10, "eval/return": 40.0}, {"target_updates": 20, "eval/return": 50.0}]
    xs, ys = RunData(tmp_path, {}, rows).series("eval/return", "target_updates")
    assert xs.tolist() == [0.0, 10.0, 20.0] and ys.tolist() == [0.0, 30.0, 50.0]
    assert normalised_auc(xs, ys, 0.0, 20.0) == pytest.approx(27.5)


def test_final_point_merges_evaluations_at_the_last_counter_value(tmp_path: Path) -> None:
    """CoWorld's two evaluations at its last ``target_updates`` are one final point, their mean (the last
    logged value alone was used before)."""
    for method, last_pair in (("coworld", (161.0, 226.0)), ("dreamer", (150.0,))):
        for seed in range(2):
            rows = [{"target_updates": 10, "eval/return": 100.0}]
            rows += [{"target_updates": 20, "eval/return": value + seed} for value in last_pair]
            rundir = tmp_path / f"{method}{seed}"
            rundir.mkdir()
            recipe = {"method": method, "seed": seed, "target": {"suite": "dmc", "task": "t"}}
            (rundir / "recipe.yaml").write_text(yaml.safe_dump(recipe))
            (rundir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = compare_runs(find_runs([tmp_path]), "eval/return", x="target_updates", force=True)
    finals = {g["name"]: g["final"]["iqm"] for g in report["groups"]}
    assert finals["coworld"] == pytest.approx((161 + 226) / 2 + 0.5)  # IQM of 193.5 and 194.5
    assert finals["dreamer"] == pytest.approx(150.5)
    runs = find_runs([tmp_path])
    _, _, cells = final_table(runs, "eval/return", "method", "target.task", x="target_updates")
    assert sorted(cells[("t", "coworld")]) == pytest.approx([193.5, 194.5])  # the table agrees with compare
    _, _, raw = final_table(find_runs([tmp_path]), "eval/return", "method", "target.task")
    assert sorted(raw[("t", "coworld")]) == [226.0, 227.0]  # without --x: the last logged value
    with pytest.raises(XferError, match="counter 'target_updatez'"):
        final_table(runs, "eval/return", "method", "target.task", x="target_updatez")
    result = xfer(["table", str(tmp_path), "--x", "updates,target_updates", "--format", "csv"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("t,194.0,")  # mean of 193.5 and 194.5


def test_table_counts_seeds_not_copies_and_keeps_the_newest_finished(tmp_path: Path) -> None:
    now = time.time()
    write_run(tmp_path / "copy1", "dreamer", "t", 0, 1.0, status={"status": "done", "finished": now - 20})
    write_run(tmp_path / "copy2", "dreamer", "t", 0, 2.0, status={"status": "done", "finished": now - 10})
    write_run(tmp_path / "copy3", "dreamer", "t", 0, 9.0, status={"status": "failed", "finished": now})
    write_run(tmp_path / "other", "dreamer", "t", 1, 4.0, status={"status": "done", "finished": now})
    warnings: list[str] = []
    rows, cols, cells = final_table(find_runs([tmp_path]), "eval/return", "method", "target.task",
                                    warn=warnings.append)
    assert sorted(cells[("t", "dreamer")]) == [2.0, 4.0]  # seed 0 counted once, from copy2
    (line,) = warnings
    assert all(name in line for name in ("copy1", "copy2", "copy3")) and "counting one" in line
    assert "(n=2)" in format_table(rows, cols, cells, "md", "target.task")
    result = xfer(["table", str(tmp_path)], tmp_path)
    assert result.returncode == 0 and "(n=2)" in result.stdout and "3 runs of seed 0" in result.stderr


def test_table_iqm_with_bootstrap_interval(tmp_path: Path) -> None:
    values = [10.0, 50.0, 30.0, 70.0, 20.0, 20.0, 90.0, 40.0]
    for seed, final in enumerate(values):
        write_run(tmp_path / f"r{seed}", "vid2act", "t", seed, final)
    rows, cols, cells = final_table(find_runs([tmp_path]), "eval/return", "method", "target.task")
    csv = format_table(rows, cols, cells, "csv", "target.task", stat="iqm", ci="bootstrap", reps=300)
    header, line = csv.splitlines()
    assert header == "target.task,vid2act iqm,vid2act ci_low,vid2act ci_high,vid2act n"
    iqm, low, high, n = (float(v) for v in line.split(",")[1:])
    assert iqm == pytest.approx(by_hand_iqm(values)) and n == 8
    expected = interval(np.array(values)[:, None], "iqm", reps=300, seed=0)
    assert (low, high) == pytest.approx(tuple(float(e) for e in expected)) and low < iqm < high


def test_plot_band_of_the_chosen_statistic_and_unknown_counter(tmp_path: Path) -> None:
    x = np.array([0.0, 10.0])
    curves = [(x, np.array([0.0, v])) for v in (1.0, 2.0, 3.0, 4.0, 100.0)]
    grid, center, low, high = stat_band(curves, "iqm", reps=300, points=3)
    assert np.allclose(center, [0.0, 1.5, 3.0])  # IQM of 1,2,3,4,100 at the end: floor(1.25)=1 cut -> 3
    assert np.all(low <= center) and np.all(center <= high) and high[-1] < 100
    assert np.allclose(center, aggregate(np.stack([np.interp(grid, *c) for c in curves])[:, None], "iqm"))
    with pytest.raises(XferError, match="band of the mean"):
        stat_band(curves, "iqm", "normal")
    a, _ = two_sweeps(tmp_path / "runs")
    result = xfer(["plot", str(a), "--x", "env_step", "--out", str(tmp_path / "c.png")], tmp_path)
    assert result.returncode == 2 and "no run logs the counter 'env_step'" in result.stderr
    assert "env_steps, step" in result.stderr and not (tmp_path / "c.png").exists()
    result = xfer(["plot", str(a), "--stat", "iqm", "--reps", "200", "--out", str(tmp_path / "c.png")],
                  tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "c.png").stat().st_size > 10_000


def test_one_group_gets_its_row_and_no_pairs(tmp_path: Path) -> None:
    vid2act, _ = two_sweeps(tmp_path)
    report = compare_runs(find_runs([vid2act]), "eval/return", reps=300)
    (group,) = report["groups"]
    pooled = [v for values in FINALS["vid2act"].values() for v in values]
    assert group["name"] == "vid2act" and group["final"]["iqm"] == pytest.approx(by_hand_iqm(pooled))
    assert report["pairs"] == []
    result = xfer(["compare", str(vid2act), "--reps", "300"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "| vid2act | 4 × 2 |" in result.stdout and "X − Y" not in result.stdout


def test_no_point_to_compare_is_one_line(tmp_path: Path) -> None:
    vid2act, _ = two_sweeps(tmp_path)
    with pytest.raises(XferError, match="no run has a point to compare"):
        compare_runs(find_runs([vid2act]), "eval/return", reps=100, upto=-1.0)
