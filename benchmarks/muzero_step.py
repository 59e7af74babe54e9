"""Seconds per EfficientZero training step (K = 5 unroll, consistency loss, SGD) on synthetic batches.

    python benchmarks/muzero_step.py --presets tiny paper paper-L --batch 32 --threads 2
"""

from __future__ import annotations

import argparse

import torch

from xfer.muzero.bench import bench_train_step
from xfer.muzero.config import EfficientZeroConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"])
    parser.add_argument("--batch", nargs="+", type=int, default=[32])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    print(f"{'preset':8} {'batch':>6} {'s/step':>8} {'samples/s':>10} {'forward':>8} {'params':>10}")
    for preset in args.presets:
        cfg = EfficientZeroConfig(preset=preset)
        for batch in args.batch:
            r = bench_train_step(cfg, batch, steps=args.steps)
            print(f"{preset:8} {batch:6d} {r['median_s_per_step']:8.3f} {r['samples_per_s']:10.1f} "
                  f"{r['forward_fraction']:8.0%} {r['parameters']:10,d}")


if __name__ == "__main__":
    main()
