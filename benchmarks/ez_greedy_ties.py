"""Greedy play of an EfficientZero checkpoint, one game at a time: its returns and how often the visit-count
argmax was tied (where the greedy action falls to the lowest action index, as EfficientZero's and
LightZero's ``argmax`` break ties). A greedy score far below the run's training games with few ties is the
policy itself, not the tie-breaking; ``--ties random`` plays the same games breaking ties at random::

    python benchmarks/ez_greedy_ties.py runs/krull_probeB50/<time>/checkpoints/ckpt-0000007500.pt --games 4
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from xfer.envs.make import make_env
from xfer.muzero.agent import FrameStacker, network_input
from xfer.run.evaluate import load_run_agent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Path, help="run directory or a checkpoint file inside one")
    parser.add_argument("--games", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--ties", choices=["lowest", "random"], default="lowest")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = load_run_agent(args.target, "cpu", Console(stderr=True))
    agent, recipe = run.agent, run.recipe
    settings = recipe.env_for(recipe.target)
    settings = settings.model_copy(update={"options": {**settings.options, "train": False}})
    returns, tied, steps = [], 0, 0
    for game in range(args.games):
        env = make_env(recipe.target.suite, recipe.target.task, settings, args.seed + game)
        obs, _ = env.reset(seed=args.seed + game)
        obs = {**obs, "is_first": True}
        stacker, total, done, rng = FrameStacker(agent.cfg), 0.0, False, np.random.default_rng(game)
        while not done:
            _, result = agent.search(network_input({k: np.asarray(v)[None] for k, v in obs.items()}, stacker),
                                     explore=False)
            counts = result.visit_counts[0]
            top = np.flatnonzero(counts == counts.max())
            tied, steps = tied + (len(top) > 1), steps + 1
            action = top[0] if args.ties == "lowest" else rng.choice(top)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total, done = total + float(reward), terminated or truncated
        env.close()
        returns.append(total)
        print(f"game {game}: return {total:.0f}", flush=True)
    print(f"greedy ({args.ties} index on ties): mean return {np.mean(returns):.0f} over {args.games} games; "
          f"argmax tied on {tied} of {steps} steps ({tied / steps:.1%})")


if __name__ == "__main__":
    main()
