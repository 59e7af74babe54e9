"""xfer vs sheeprl 0.8.4: one DreamerV2 training step (world model + actor + critic, horizon 15), side by
side.

Both implementations run in separate processes, alternately (xfer, sheeprl, xfer, sheeprl, ...), at the same
shapes and thread count, so load from other processes on a shared machine hits both alike: the ratio of the
medians is the figure to quote, not the absolute seconds. Each process builds its agent, runs ``--warmup``
untimed steps and ``--steps`` timed ones on random data; the 1-minute load average is recorded per process.

    python benchmarks/dreamer_vs_sheeprl.py --shapes paper --reps 3
    python benchmarks/dreamer_vs_sheeprl.py --shapes cpu --reps 3 --json cpu_shapes.json
    # before/after of a change: an older xfer tree (git archive <commit> xfer | tar -x -C /tmp/xfer_old),
    # run with the switches of --src-variant (fp32 by default)
    python benchmarks/dreamer_vs_sheeprl.py --shapes cpu --xfer-src before=/tmp/xfer_old
    python benchmarks/dreamer_vs_sheeprl.py --shapes cpu --amp --compile --xfer-src before=/tmp/xfer_old \\
        --src-variant amp_compile --sheeprl-precision bf16-mixed
    # bf16 autocast on both sides as well (xfer ``model.amp``, sheeprl ``fabric.precision=bf16-mixed``)
    python benchmarks/dreamer_vs_sheeprl.py --shapes cpu --amp --sheeprl-precision bf16-mixed
    # and xfer's torch.compile (model.compile) on top of bf16
    python benchmarks/dreamer_vs_sheeprl.py --shapes cpu --amp --compile --sheeprl-precision bf16-mixed

Shapes: ``paper`` = ``xfer bench`` defaults (64×64×3, CNN depth 48, GRU 600, 32×32 discrete, MLP 4×400,
B 16 × L 50, 4-d action); ``cpu`` = the ``cpu`` preset and B 16 × L 32 of recipes/dreamer_pixels_cpu.yaml
(1-d action, cartpole). sheeprl gets its ``use_continues`` (discount head) switched on so that both learn
the same heads (xfer's DreamerV2 default).
sheeprl runs from ``--sheeprl-python`` (default /work/venvs/sheeprl/bin/python, ``pip install torch==2.13.0
sheeprl==0.8.4``) with ``benchmarks/anchors/sheeprl_dv2_step.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = ROOT / "benchmarks" / "anchors" / "sheeprl_dv2_step.py"

# xfer preset name -> (B, L, action dim, sheeprl hydra overrides giving the same sizes)
SHAPES: dict[str, dict] = {
    "paper": {"preset": "paper", "batch": 16, "seq": 50, "act": 4, "sheeprl": []},
    "cpu": {"preset": "cpu", "batch": 16, "seq": 32, "act": 1, "sheeprl": [
        "algo.world_model.encoder.cnn_channels_multiplier=16",
        "algo.world_model.recurrent_model.recurrent_state_size=200",
        "algo.world_model.transition_model.hidden_size=200",
        "algo.world_model.representation_model.hidden_size=200",
        "algo.world_model.stochastic_size=16", "algo.world_model.discrete_size=16",
        "algo.dense_units=256", "algo.mlp_layers=2"]},
}

XFER_WORKER = """
import json, sys
from xfer.dreamer.bench import bench_train_step
from xfer.dreamer.config import DreamerConfig
a = json.loads(sys.argv[1])
cfg = DreamerConfig.from_preset(a["preset"], amp=a["amp"], compile=a["compile"])
res = bench_train_step(cfg, batch=a["batch"], seq=a["seq"],
                       act_dim=a["act"], steps=a["steps"], warmup=a["warmup"], threads=a["threads"],
                       count_flops=False)
print("JSON " + json.dumps(res, default=str))
"""


def run_xfer(shape: dict, args: argparse.Namespace, src: str | None, amp: bool = False,
             compile: bool = False) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    warmup = max(args.warmup, 3) if compile else args.warmup  # the first calls compile
    payload = json.dumps({**shape, "steps": args.steps, "warmup": warmup, "threads": args.threads,
                          "amp": amp, "compile": compile})
    load = os.getloadavg()[0]
    out = subprocess.run([sys.executable, "-c", XFER_WORKER, payload], env=env, capture_output=True,
                         text=True, check=True, cwd="/tmp" if src else ROOT).stdout
    res = json.loads(next(line[5:] for line in out.splitlines() if line.startswith("JSON ")))
    return {"median_s": res["median_s_per_step"], "min_s": res["min_s_per_step"],
            "each_s": res["s_per_step_each"], "load_before": load, "load_after": os.getloadavg()[0]}


def run_sheeprl(shape: dict, args: argparse.Namespace, precision: str = "32-true") -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    cmd = [args.sheeprl_python, str(ANCHOR), "--batch", str(shape["batch"]), "--seq", str(shape["seq"]),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
           "--action-dim", str(shape["act"]), "--precision", precision,
           "--override", "algo.world_model.use_continues=True"]
    for override in shape["sheeprl"]:
        cmd += ["--override", override]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    return {"median_s": res["median_s_per_step"], "min_s": res["min"], "each_s": res["wall_s_each"],
            "load_before": res["loadavg_before"], "load_after": res["loadavg_after"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", choices=sorted(SHAPES), default="paper")
    parser.add_argument("--reps", type=int, default=3, help="processes per implementation, alternated")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--xfer-src", action="append", default=[],
                        help="label=path of another xfer source tree to time as well (before/after)")
    parser.add_argument("--src-variant", choices=("fp32", "amp", "amp_compile"), default="fp32",
                        help="the switches the --xfer-src trees run with")
    parser.add_argument("--sheeprl-python", default="/work/venvs/sheeprl/bin/python")
    parser.add_argument("--no-sheeprl", action="store_true")
    parser.add_argument("--amp", action="store_true", help="also time xfer with model.amp (bf16 autocast)")
    parser.add_argument("--compile", action="store_true",
                        help="also time xfer with model.compile (with --amp: amp and compile together)")
    parser.add_argument("--sheeprl-precision", action="append", default=[],
                        help="also time sheeprl at this fabric precision (e.g. bf16-mixed)")
    parser.add_argument("--json", default=None, help="write the result here")
    args = parser.parse_args()
    shape = SHAPES[args.shapes]
    runners = {"xfer": lambda: run_xfer(shape, args, None)}
    for spec in args.xfer_src:
        label, path = spec.split("=", 1)
        amp, comp = args.src_variant != "fp32", args.src_variant == "amp_compile"
        runners[f"xfer_{label}"] = (
            lambda path=path, amp=amp, comp=comp: run_xfer(shape, args, path, amp, comp))
    if args.amp:
        runners["xfer_amp"] = lambda: run_xfer(shape, args, None, amp=True)
    if args.compile:
        runners["xfer_amp_compile" if args.amp else "xfer_compile"] = (
            lambda: run_xfer(shape, args, None, amp=args.amp, compile=True))
    if not args.no_sheeprl:
        runners["sheeprl"] = lambda: run_sheeprl(shape, args)
        for precision in args.sheeprl_precision:
            runners[f"sheeprl_{precision}"] = lambda precision=precision: run_sheeprl(shape, args, precision)
    runs: dict[str, list[dict]] = {name: [] for name in runners}
    for rep in range(args.reps):
        for name, runner in runners.items():
            res = runner()
            runs[name].append(res)
            print(f"rep {rep} {name:>14}: median {res['median_s']:.3f} s/step (min {res['min_s']:.3f}), "
                  f"load {res['load_before']:.1f} -> {res['load_after']:.1f}", flush=True)
    medians = {name: statistics.median(r["median_s"] for r in rs) for name, rs in runs.items()}
    minimums = {name: min(r["min_s"] for r in rs) for name, rs in runs.items()}
    result = {"shapes": args.shapes, **shape, "threads": args.threads, "steps": args.steps,
              "warmup": args.warmup, "reps": args.reps, "median_s_per_step": medians,
              "min_s_per_step": minimums,
              "runs": runs,
              "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "loads": [r["load_before"] for rs in runs.values() for r in rs], "cpus": os.cpu_count()}
    if "sheeprl" in medians:
        result["ratio_to_sheeprl"] = {name: medians[name] / medians["sheeprl"] for name in medians
                                      if name != "sheeprl"}
        # the fastest step of each: least disturbed by other processes, a second estimate of the ratio
        result["ratio_of_minimums"] = {name: minimums[name] / minimums["sheeprl"] for name in minimums
                                       if name != "sheeprl"}
        # ratio per alternation round: xfer and sheeprl processes that ran back to back
        pairs = zip(runs["xfer"], runs["sheeprl"], strict=True)
        result["ratio_per_rep"] = [x["median_s"] / s["median_s"] for x, s in pairs]
    shown = ("median_s_per_step", "ratio_to_sheeprl", "ratio_of_minimums", "ratio_per_rep")
    print(json.dumps({k: result[k] for k in shown if k in result}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
