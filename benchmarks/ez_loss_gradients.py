"""Is one EfficientZero loss term starved by the others? Per-term gradient norms on each parameter group
(:mod:`xfer.muzero.loss_gradients`) while a fresh learner fits a run's own replay offline.

At each of ``--at`` update counts the norms are averaged over ``--batches`` batches of the replay (the
learner trains with the run's loss and settings, ``--set`` overrides of its model config). A reward term
whose gradients on the shared representation and dynamics are of the order of the others' is not starved
there; if its loss then sits at the reward's marginal, the signal is slow, not drowned::

    python benchmarks/ez_loss_gradients.py runs/qbert_probeB50/<time> --at 20 100 300 700 \\
        --set reanalyse_policy_ratio=0 --set priority_alpha=0 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from xfer.muzero.diagnostics import run_replay
from xfer.muzero.learner import Learner
from xfer.muzero.loop import efficientzero_update
from xfer.muzero.loss_gradients import TERMS, loss_gradient_norms
from xfer.muzero.replay import PrioritizedReplay
from xfer.muzero.targets import TargetSource, make_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rundir", type=Path)
    parser.add_argument("--at", type=int, nargs="+", default=[20, 100, 300, 700])
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a field of the run's model config")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cfg, games = run_replay(args.rundir, {k: yaml.safe_load(v) for k, v in
                                          (item.split("=", 1) for item in args.set)})
    replay = PrioritizedReplay(cfg)
    for game in games:
        replay.add(game)
    learner, done, start, rows = Learner(cfg), 0, time.perf_counter(), []
    for target in sorted(args.at):
        while done < target:
            efficientzero_update(learner, replay, rng)
            done += 1
        samples, losses = [], {term: [] for term in TERMS}
        for _ in range(args.batches):
            positions = replay.sample(cfg.batch_size, rng, 1.0)
            batch = make_batch(replay, positions, cfg, TargetSource(learner.target_net), rng, learner.device,
                               ages=replay.ages(positions.game_ids, positions.steps))
            samples.append(loss_gradient_norms(learner, batch))
            for term, value in learner.losses(batch).as_dict().items():
                if term in losses:
                    losses[term].append(value)
        table = {term: {group: float(np.mean([s[term][group] for s in samples]))
                        for group in samples[0][term]} for term in TERMS}
        rows.append({"updates": done, "seconds": time.perf_counter() - start, "norms": table,
                     "losses": {term: float(np.mean(v)) for term, v in losses.items()}})
        groups = list(table[TERMS[0]])
        print(f"after {done} updates ({rows[-1]['seconds']:.0f} s): gradient norm of coeff x term / K")
        print("term".ljust(12) + "".join(g.rjust(15) for g in groups) + "loss".rjust(10))
        for term in TERMS:
            print(term.ljust(12) + "".join(f"{table[term][g]:15.4g}" for g in groups)
                  + f"{rows[-1]['losses'][term]:10.4g}", flush=True)
    if args.json:
        result = {"run": str(args.rundir), "overrides": args.set, "rows": rows}
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
