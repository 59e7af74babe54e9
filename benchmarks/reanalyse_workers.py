"""EfficientZero updates per second with the reanalyse in worker processes against in the learner's process.

Same settings for every variant: the preset's networks (default ``atari-cpu``: 64x64 gray x 4, 32 planes,
batch 64) with every policy target reanalysed by 16 simulations, a replay of random 18-action games, one
torch thread for the learner and one per worker. Each variant times ``--updates`` full updates (sample,
targets, SGD) after ``--warmup``; the variants run in turn in one process, ``--rounds`` times, and the
1-minute load average is reported with each figure, since any other job on the machine changes them.

    python benchmarks/reanalyse_workers.py --workers 0 1 2 --updates 20 --rounds 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from xfer.muzero.batch_workers import BatchWorkers
from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.learner import Learner
from xfer.muzero.loop import efficientzero_update
from xfer.muzero.replay import GameHistory, PrioritizedReplay


def random_replay(cfg: EfficientZeroConfig, games: int, length: int, seed: int = 0) -> PrioritizedReplay:
    """``games`` random games of ``length`` steps at the config's frame shape, all actions legal."""
    rng = np.random.default_rng(seed)
    replay = PrioritizedReplay(cfg)
    shape = (length + 1, cfg.image_channels, cfg.image_size, cfg.image_size)
    for _ in range(games):
        policies = rng.random((length, cfg.n_actions)).astype(np.float32)
        replay.add(GameHistory(
            frames=rng.integers(0, 256, shape, dtype=np.uint8),
            actions=rng.integers(0, cfg.n_actions, length),
            rewards=rng.integers(0, 2, length).astype(np.float32),
            policies=policies / policies.sum(-1, keepdims=True),
            root_values=rng.random(length).astype(np.float32),
            legal_mask=np.ones(cfg.n_actions, bool), terminal=False))
    return replay


def time_updates(cfg: EfficientZeroConfig, replay: PrioritizedReplay, workers: int, updates: int,
                 warmup: int) -> dict[str, float]:
    torch.manual_seed(0)
    learner = Learner(cfg)
    rng = np.random.default_rng(0)
    pool = BatchWorkers(cfg, workers) if workers else None
    try:
        for _ in range(warmup):  # also fills the workers' queue
            efficientzero_update(learner, replay, rng, workers=pool)
        start = time.perf_counter()
        for _ in range(updates):
            efficientzero_update(learner, replay, rng, workers=pool)
        seconds = time.perf_counter() - start
    finally:
        if pool is not None:
            pool.close()
    return {"workers": workers, "s_per_update": seconds / updates, "updates_per_s": updates / seconds,
            "load_avg_1min": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="atari-cpu")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--games", type=int, default=20)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    # the settings its committed figures were measured at (the atari-cpu preset before it took 50 simulations
    # and the stored visit counts as policy targets): every policy target reanalysed by a 16-simulation search
    cfg = EfficientZeroConfig(preset=args.preset, n_actions=18, num_simulations=16,
                              reanalyse_policy_ratio=1.0, priority_alpha=0.6, amp=False,
                              target_update_interval=200)
    replay = random_replay(cfg, args.games, args.length)
    rows = []
    for round_ in range(args.rounds):
        for workers in args.workers:
            row = {"round": round_, **time_updates(cfg, replay, workers, args.updates, args.warmup)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = {r["round"]: r["s_per_update"] for r in rows if r["workers"] == args.workers[0]}
    print(f"\n| workers | s per update (rounds) | speed-up vs {args.workers[0]} | load (1 min) |")
    print("|---|---|---|---|")
    for workers in args.workers:
        mine = [r for r in rows if r["workers"] == workers]
        times = " / ".join(f"{r['s_per_update']:.2f}" for r in mine)
        ups = " / ".join(f"{base[r['round']] / r['s_per_update']:.2f}x" for r in mine)
        loads = " / ".join(f"{r['load_avg_1min']:.1f}" for r in mine)
        print(f"| {workers} | {times} | {ups} | {loads} |")
    if args.json:
        args.json.write_text(json.dumps({"preset": args.preset, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
