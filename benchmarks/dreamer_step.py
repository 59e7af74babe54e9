"""Time one DreamerV2 training step (world model + actor + critic) at sheeprl's default shapes.

    python benchmarks/dreamer_step.py                       # paper preset, B 16 × L 50, 2 threads
    python benchmarks/dreamer_step.py --preset tiny --batch 4 --seq 8 --json
    python benchmarks/dreamer_step.py --preset small --state-dim 5   # sheeprl's state-input row
"""

from __future__ import annotations

import argparse
import json

from xfer.dreamer.bench import bench_train_step
from xfer.dreamer.config import PRESETS, DreamerConfig

# sheeprl 0.8.4 DreamerV2 on a 2-core CPU (BENCHMARKS.md): paper shapes from images, small sizes from states
SHEEPRL_S_PER_STEP = {"image": 13.8, "state": 1.25}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=50)
    parser.add_argument("--act-dim", type=int, default=4)
    parser.add_argument("--state-dim", type=int, default=0, help="> 0: state-vector input instead of images")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    obs_kind = "state" if args.state_dim else "image"
    obs_shapes = {"state": (args.state_dim,)} if args.state_dim else {"image": (64, 64, 3)}
    result = bench_train_step(DreamerConfig.from_preset(args.preset), batch=args.batch, seq=args.seq,
                              act_dim=args.act_dim, steps=args.steps, warmup=args.warmup,
                              threads=args.threads,
                              compile=args.compile, amp=args.amp, device=args.device, obs_shapes=obs_shapes)
    if args.json:
        print(json.dumps(result))
        return
    rows = [
        ("preset", args.preset), ("shapes", json.dumps(result["shapes"])),
        ("median s/step", f"{result['median_s_per_step']:.3f}"),
        ("min-max s/step", f"{result['min_s_per_step']:.3f}-{result['max_s_per_step']:.3f}"),
        ("updates/s", f"{result['updates_per_s']:.3f}"), ("peak memory MB", f"{result['peak_mem_mb']:.0f}"),
        ("GFLOP per step", f"{result['gflop_per_step']:.1f}"),
        ("achieved GFLOP/s", f"{result['achieved_gflops']:.1f}"),
        ("matmul GFLOP/s", f"{result['matmul_gflops']:.1f}"), ("threads", str(result["threads"])),
        ("load average (1 min)", f"{result['load_avg_1min']:.2f}"),
        (f"sheeprl {SHEEPRL_S_PER_STEP[obs_kind]} s / xfer",
         f"{SHEEPRL_S_PER_STEP[obs_kind] / result['median_s_per_step']:.2f} (sheeprl's row for these sizes)"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
