"""How fast the EfficientZero learner fits the cue bandit's reward table, on fixed random-play data.

The full learner (all four losses, prioritised replay, reanalysed targets) trains on 300 episodes of
uniform-random play of the cue bandit (tests/muzero/helpers_muzero.py: 4 cues, reward 1 iff action = cue).
Every 100 updates it prints the eval-mode predicted reward of the right and the wrong actions (depth 1 from
each cue's root) and how many cues rank the right action first. This is how the `tiny-cpu` widths were
chosen (README, "Learning you can see")::

    python benchmarks/ez_reward_fit.py                       # tiny-cpu
    python benchmarks/ez_reward_fit.py --set channels=8 --set reduced_channels=4 \\
        --set lstm_hidden=16 --set head_hidden=16            # tiny's widths
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "muzero"))
from helpers_muzero import SIZE  # noqa: E402

from xfer.muzero.config import EfficientZeroConfig  # noqa: E402
from xfer.muzero.learner import Learner  # noqa: E402
from xfer.muzero.loop import efficientzero_update  # noqa: E402
from xfer.muzero.replay import GameHistory, PrioritizedReplay  # noqa: E402


def frames(cues: np.ndarray) -> np.ndarray:
    return np.stack([np.full((1, SIZE, SIZE), 40 + 60 * c, np.uint8) for c in cues])


def random_play(cfg: EfficientZeroConfig, episodes: int, rng: np.random.Generator) -> PrioritizedReplay:
    replay = PrioritizedReplay(cfg)
    for _ in range(episodes):
        cues, actions = rng.integers(4, size=11), rng.integers(4, size=10)
        replay.add(GameHistory(frames=frames(cues), actions=actions,
                               rewards=(actions == cues[:10]).astype(np.float32),
                               policies=np.full((10, 4), 0.25, np.float32),
                               root_values=np.zeros(10, np.float32), legal_mask=np.ones(4, bool),
                               terminal=True))
    return replay


@torch.no_grad()
def reward_table(learner: Learner) -> np.ndarray:
    """[cue, action] predicted reward, eval mode, one model step from each cue's root."""
    net = learner.net
    net.eval()
    root = net.initial_inference(torch.as_tensor(frames(np.arange(4))))
    table = [net.recurrent_inference(root.latent, root.reward_hidden, torch.full((4,), a)).value_prefix
             for a in range(4)]
    return torch.stack(table, dim=1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=400)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a model field of the tiny-cpu preset")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    cfg = EfficientZeroConfig.model_validate({"preset": "tiny-cpu", "image_size": SIZE, "image_channels": 1,
                                              "n_actions": 4, **overrides})
    learner, replay = Learner(cfg), random_play(cfg, 300, rng)
    for update in range(1, args.updates + 1):
        efficientzero_update(learner, replay, rng)
        if update % 100 == 0:
            table = reward_table(learner)
            right, wrong = np.trace(table) / 4, (table.sum() - np.trace(table)) / 12
            ranked = int((table.argmax(axis=1) == np.arange(4)).sum())
            print(f"{update} updates: right {right:.2f}, wrong {wrong:.2f}, cues ranked right {ranked}/4",
                  flush=True)


if __name__ == "__main__":
    main()
