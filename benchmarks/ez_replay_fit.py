"""How fast a fresh EfficientZero learner fits a run's own replay, offline: held-out value and reward
correlations (``xfer.muzero.diagnostics``) every ``--every`` updates.

Every fifth game of the run's newest saved replay is held out; the learner (the run's model config, with
``--set`` overrides, e.g. ``reanalyse_policy_ratio=0`` to spend no time on search) trains on the rest. A
model that cannot fit the data its agent collected will not learn online either; one that fits it slowly
says how many updates the game needs at these sizes::

    python benchmarks/ez_replay_fit.py runs/qbert_probeB50/<time> --updates 2000 \\
        --set reanalyse_policy_ratio=0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from xfer.muzero.diagnostics import model_knowledge, run_replay
from xfer.muzero.learner import Learner
from xfer.muzero.loop import efficientzero_update
from xfer.muzero.replay import PrioritizedReplay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rundir", type=Path)
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--every", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--positions", type=int, default=20, help="evenly spaced positions measured per game")
    parser.add_argument("--fitted", type=int, default=0, metavar="K",
                        help="also measure K of the games being fitted: fitted well and held-out poorly is "
                             "too little data; neither is an optimisation problem")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a field of the run's model config")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    cfg, games = run_replay(args.rundir, overrides)
    held = games[::5]
    replay = PrioritizedReplay(cfg)
    fitted = [game for index, game in enumerate(games) if index % 5]
    for game in fitted:
        replay.add(game)
    legal = np.asarray(held[0].legal_mask, bool)
    print(f"{len(games) - len(held)} games to fit ({replay.num_transitions} steps), {len(held)} held out",
          flush=True)
    learner, start = Learner(cfg), time.perf_counter()
    for update in range(1, args.updates + 1):
        efficientzero_update(learner, replay, rng)
        if update % args.every == 0:
            seconds = time.perf_counter() - start
            sets = [("held out", held)] + ([("fitted", fitted[:args.fitted])] if args.fitted else [])
            for label, measured in sets:
                out = model_knowledge(learner.net, cfg, measured, legal, positions=args.positions)
                print(f"{update} updates, {seconds:.0f} s, {label}: value corr {out['value_corr']:.3f}, "
                      f"reward corr {out['reward_corr']:.3f}, r̂ rewarded / other "
                      f"{out['reward_pred_rewarded']:.3f} / {out['reward_pred_unrewarded']:.3f}, "
                      f"Q spread {out['q_spread_median']:.3f}", flush=True)
            learner.net.train()


if __name__ == "__main__":
    main()
