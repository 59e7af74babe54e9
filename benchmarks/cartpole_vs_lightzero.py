"""xfer's EfficientZero and LightZero 0.2.0's side by side on CartPole-v0, seed by seed, on one machine.

For every seed the two runs start together, one process and one torch thread each (LightZero with its `base`
environment manager, so neither spawns workers), at the same budget of environment steps; the load average
is sampled while they run. LightZero's run is then written as an xfer run directory
(`anchors/lightzero/lightzero_to_run.py`) so `xfer compare` sets the two side by side; the time to the
threshold return comes from each run's TensorBoard wall times.

    python benchmarks/cartpole_vs_lightzero.py --lz-python /work/venvs/lightzero/bin/python \\
        --seeds 0 1 2 --env-steps 5000 --out benchmarks/results/efficientzero_cartpole

Writes OUT/runs/{xfer,lightzero}/..., OUT/summary.json, OUT/compare.md and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = ROOT / "benchmarks" / "anchors" / "lightzero"
RECIPE = ROOT / "recipes" / "efficientzero_cartpole.yaml"
XFER = str(Path(sys.executable).with_name("xfer"))  # the console script next to this python


def xfer_eval_times(rundir: Path) -> list[tuple[int, float, float]]:
    """(env_steps, minutes since the run started, eval return) of every evaluation, from TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    started = json.loads((rundir / "run.json").read_text())["started"]
    points = []
    for events in sorted(rundir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if "eval/return" in acc.Tags()["scalars"]:
            points += [(int(e.step), (e.wall_time - started) / 60, float(e.value))
                       for e in acc.Scalars("eval/return")]
    return sorted(points)


def lightzero_eval_times(rundir: Path) -> list[tuple[int, float, float]]:
    rows = [json.loads(line) for line in (rundir / "metrics.jsonl").read_text().splitlines()]
    return [(r["env_steps"], r["minutes"], r["eval/return"]) for r in rows]


def summarise(points: list[tuple[int, float, float]], threshold: float) -> dict[str, Any]:
    first = next((p for p in points if p[2] >= threshold), None)
    return {"evals": points, "final": points[-1][2] if points else None,
            "best": max((p[2] for p in points), default=None),
            "steps_to_threshold": first[0] if first else None,
            "minutes_to_threshold": round(first[1], 2) if first else None}


def run_pair(seed: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    lz_dir = out / "lightzero_work" / f"seed{seed}"
    lz_dir.mkdir(parents=True, exist_ok=True)
    lz_log = lz_dir / "train.log"
    exp_name = f"data_ez/cartpole_seed{seed}"
    xfer_logdir = out / "runs" / "xfer"
    xfer_cmd = [XFER, "run", str(RECIPE), "--set", f"seed={seed}", "--set", f"name=cartpole_seed{seed}",
                "--set", f"logdir={xfer_logdir}", "--set", "logging.live=false",
                "--set", f"efficientzero.selfplay.env_steps={args.env_steps}",
                "--set", f"efficientzero.model.training_steps={args.env_steps // 2}"]
    lz_cmd = [args.lz_python, str(ANCHOR / "run_cartpole_ez_cpu.py"), "--seed", str(seed), "--env-manager",
              "base", "--max-env-step", str(args.env_steps), "--eval-episodes", "8", "--exp-name", exp_name]
    loads: list[float] = []
    start = time.time()
    with open(lz_log, "w") as lz_out, open(out / f"xfer_seed{seed}.log", "w") as xf_out:
        procs = {"lightzero": subprocess.Popen(lz_cmd, cwd=lz_dir, env=env, stdout=lz_out, stderr=lz_out),
                 "xfer": subprocess.Popen(xfer_cmd, cwd=ROOT, env=env, stdout=xf_out, stderr=xf_out)}
        ended: dict[str, float] = {}
        while len(ended) < len(procs):
            time.sleep(10)
            loads.append(os.getloadavg()[0])
            for name, proc in procs.items():
                if name not in ended and proc.poll() is not None:
                    ended[name] = round((time.time() - start) / 60, 2)
                elif name not in ended and time.time() - start > args.timeout_min * 60:
                    proc.terminate()
    lz_run = out / "runs" / "lightzero" / f"seed{seed}"
    subprocess.run([args.lz_python, str(ANCHOR / "lightzero_to_run.py"), str(lz_dir / exp_name), str(lz_log),
                    str(lz_run), "--seed", str(seed), "--max-env-step", str(args.env_steps)], check=True)
    xfer_run = max((xfer_logdir / f"cartpole_seed{seed}").iterdir(), key=lambda p: p.stat().st_mtime)
    return {"seed": seed, "minutes": ended, "load_1min": {"min": min(loads), "max": max(loads),
                                                           "mean": round(sum(loads) / len(loads), 2)},
            "xfer": {"run": str(xfer_run), **summarise(xfer_eval_times(xfer_run), args.threshold)},
            "lightzero": {"run": str(lz_run), **summarise(lightzero_eval_times(lz_run), args.threshold)}}


def table(results: list[dict[str, Any]], threshold: float) -> str:
    lines = [f"| seed | system | env steps to ≥ {threshold:g} | minutes to ≥ {threshold:g} | best | final | "
             "run minutes | load (1-min, mean) |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for name in ("xfer", "lightzero"):
            s = r[name]
            lines.append(f"| {r['seed']} | {name} | {s['steps_to_threshold'] or 'never'} | "
                         f"{s['minutes_to_threshold'] or 'never'} | {s['best']:.1f} | {s['final']:.1f} | "
                         f"{r['minutes'].get(name)} | {r['load_1min']['mean']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lz-python", required=True, help="python of a venv with lightzero==0.2.0")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--env-steps", type=int, default=5000)
    parser.add_argument("--threshold", type=float, default=193.0, help="LightZero's best in the anchor run")
    parser.add_argument("--timeout-min", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/efficientzero_cartpole")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in args.seeds:
        results.append(run_pair(seed, args, args.out))
        summary = {"command": sys.argv, "results": results}
        (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
        print(table(results, args.threshold), flush=True)
    report = subprocess.run([XFER, "compare", str(args.out / "runs"), "--metric",
                             "eval/return", "--by", "method", "--x", "env_steps", "--force"],
                            capture_output=True, text=True, cwd=ROOT)
    (args.out / "compare.md").write_text(report.stdout + report.stderr)
    print(report.stdout + report.stderr)


if __name__ == "__main__":
    main()
