"""Evidence of transfer at a CPU-sized scale: Vid2Act against DreamerV2 from scratch on the same target.

Both methods use the quickstart recipe's sizes (tiny nets, 100-step Meta-World episodes, drawer-close and
button-press-topdown sources → drawer-open) with a longer budget; ``dreamer`` gets the same backbone and
schedule, without sources. For every seed both run; then the script writes

    OUT/curves_return.png    eval/return against environment steps (mean and 95 % band over seeds)
    OUT/curves_success.png   eval/success
    OUT/weights.png          Vid2Act's w_k per source task (the paper's Fig. 9)
    OUT/results.md           final return / success per method (mean ± std over seeds) and wall time

    python benchmarks/vid2act_transfer.py                                  # 30k env steps, seeds 0 1 2
    python benchmarks/vid2act_transfer.py --env-steps 600 --pretrain-steps 5 --seeds 0 --out /tmp/b  # smoke

Runs live under OUT/runs; a finished run is reused when the script is started again (``--fresh`` reruns).
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Any

import yaml

from xfer.plot import final_table, find_runs, format_table, plot_curves
from xfer.run.runner import run_status, start_run

ROOT = Path(__file__).resolve().parents[1]


def vid2act_recipe(base: dict[str, Any], args: argparse.Namespace, seed: int) -> dict[str, Any]:
    recipe = copy.deepcopy(base)
    budget = f"{args.env_steps}steps_{args.pretrain_steps}pre"  # runs are reused only at an equal budget
    recipe.update(name=f"vid2act_{budget}_seed{seed}", seed=seed)
    recipe["eval"] = {"every": args.eval_every, "episodes": args.eval_episodes, "video": False}
    recipe["checkpoint"] = {"every": max(args.env_steps // 4, 1), "keep": 1}
    recipe["vid2act"]["pretrain"]["steps"] = args.pretrain_steps
    recipe["vid2act"]["transfer"]["env_steps"] = args.env_steps
    return recipe


def dreamer_recipe(vid2act: dict[str, Any], seed: int) -> dict[str, Any]:
    """DreamerV2 from scratch with Vid2Act's backbone sizes and Stage 2 schedule, no sources."""
    keep = ("device", "target", "env", "eval", "checkpoint", "logging", "perf", "datadir", "logdir")
    recipe = {key: copy.deepcopy(vid2act[key]) for key in keep if key in vid2act}
    transfer = vid2act["vid2act"]["transfer"]
    recipe.update(method="dreamer", name=vid2act["name"].replace("vid2act_", "dreamer_", 1), seed=seed)
    recipe["dreamer"] = {"mode": "online", "model": copy.deepcopy(vid2act["vid2act"]["model"]),
                         "train": {**transfer["schedule"], "env_steps": transfer["env_steps"]}}
    return recipe


def finished_run(logdir: Path, name: str) -> Path | None:
    for rundir in sorted((logdir / name).glob("*"), reverse=True):
        if run_status(rundir).get("status") == "done":
            return rundir
    return None


def run_one(recipe: dict[str, Any], out: Path, fresh: bool) -> tuple[Path, float]:
    logdir = Path(recipe["logdir"])
    if not fresh and (done := finished_run(logdir, recipe["name"])) is not None:
        print(f"reusing {done}")
        return done, float("nan")
    path = out / "recipes" / f"{recipe['name']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    start = time.monotonic()
    rundir = start_run(path)
    return rundir, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "quickstart.yaml")
    parser.add_argument("--env-steps", type=int, default=30_000)
    parser.add_argument("--pretrain-steps", type=int, default=2_000)
    parser.add_argument("--eval-every", type=int, default=2_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "vid2act_transfer")
    parser.add_argument("--fresh", action="store_true", help="rerun even when a finished run exists")
    args = parser.parse_args()
    args.eval_every = min(args.eval_every, args.env_steps)

    base = yaml.safe_load(args.recipe.read_text())
    base["logdir"] = str(args.out / "runs")
    base["datadir"] = str(base.get("datadir", ROOT / "data"))
    base["logging"] = {**base.get("logging", {}), "tensorboard": False, "live": False}
    walls: dict[str, list[float]] = {"vid2act": [], "dreamer": []}
    rundirs = []
    for seed in args.seeds:
        v2a = vid2act_recipe(base, args, seed)
        for method, recipe in (("vid2act", v2a), ("dreamer", dreamer_recipe(v2a, seed))):
            rundir, wall = run_one(recipe, args.out, args.fresh)
            rundirs.append(rundir)
            walls[method].append(wall)

    runs = find_runs(rundirs)  # only this invocation's runs, never other runs left in OUT
    plot_curves(runs, "eval/return", "env_steps", "method", args.out / "curves_return.png",
                title="drawer-open: Vid2Act vs DreamerV2 from scratch")
    plot_curves(runs, "eval/success", "env_steps", "method", args.out / "curves_success.png")
    vid2act_runs = [run for run in runs if run.recipe.get("method") == "vid2act"]
    plot_curves(vid2act_runs, "vid2act/weight/*", "env_steps", "method", args.out / "weights.png",
                title="Vid2Act source weights w_k (Fig. 9)")
    lines = [f"# Vid2Act vs DreamerV2 from scratch ({args.env_steps} env steps, seeds {args.seeds})", "",
             f"Recipe: `{args.recipe.name}` sizes; Stage 1: {args.pretrain_steps} updates.", ""]
    for metric in ("eval/return", "eval/success"):
        rows, cols, cells = final_table(runs, metric, "method", "target.task")
        lines += [f"## final {metric}", "", format_table(rows, cols, cells, "markdown", "target.task"), ""]
    lines += ["## wall time (s) of the runs made now", ""]
    for method, times in walls.items():
        done = [t for t in times if t == t]
        lines.append(f"- {method}: " + (", ".join(f"{t:.0f}" for t in done) if done else "reused"))
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"plots and table in {args.out}")


if __name__ == "__main__":
    main()
