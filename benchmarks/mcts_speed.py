"""Batched MCTS throughput of the EfficientZero backbone: simulations/s and the network vs tree split.

    python benchmarks/mcts_speed.py --presets tiny paper --envs 1 8 32 --sims 50 --threads 2
"""

from __future__ import annotations

import argparse

import torch

from xfer.muzero.bench import bench_mcts
from xfer.muzero.config import EfficientZeroConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"])
    parser.add_argument("--envs", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--sims", type=int, default=50)
    parser.add_argument("--actions", type=int, default=18)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.sims} simulations, "
          f"{args.actions} actions")
    print(f"{'preset':8} {'envs':>5} {'ms/search':>10} {'sims/s':>9} {'network':>8} {'tree':>6} "
          f"{'tree us/sim':>12}")
    for preset in args.presets:
        cfg = EfficientZeroConfig(preset=preset)
        for envs in args.envs:
            r = bench_mcts(cfg, envs, args.sims, args.actions, repeats=args.repeats)
            print(f"{preset:8} {envs:5d} {r['ms_per_search']:10.1f} {r['sims_per_s']:9.0f} "
                  f"{r['network_fraction']:8.0%} {r['tree_fraction']:6.0%} {r['tree_us_per_sim']:12.0f}")


if __name__ == "__main__":
    main()
