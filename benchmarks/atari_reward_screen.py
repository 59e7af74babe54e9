"""Which Atari games' rewards can a small network predict from the frames, at a CPU-sized dataset?

A model-based agent (EfficientZero) must first learn what an action earns. This screen asks it of each game
without any agent: random play is collected with xfer's own Atari suite (``xfer data collect``, the same
frame settings as an EfficientZero recipe), and a plain CNN (Nature-DQN layers, the action one-hot beside its
features) is fitted by cross-entropy to the sign of the next reward from the last ``--stack`` frames and
the action, a quarter of each batch drawn from rewarded steps. The last ``--held`` episodes are held out;
the score is the correlation, on them, of the predicted expected sign with the true one (also per class).
Near 0 means the rewards are not learnable from these frames at this amount of data — no agent built on
such a model will learn there at this budget either::

    MUJOCO_GL=egl OMP_NUM_THREADS=1 python benchmarks/atari_reward_screen.py boxing pong krull \\
        --episodes 24 --time-limit 8000 --updates 3000 --json screen.json

The CNN is a probe of the data, not a part of xfer.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xfer.data.collect import collect
from xfer.data.dataset import Dataset
from xfer.envs.settings import EnvSettings


def frames_actions_rewards(dataset: Dataset, stack: int) -> tuple[np.ndarray, ...]:
    """Per step t of every episode: the stacked frames o_{t-stack+1..t}, a_t, sign(r_{t+1}), episode index."""
    frames, actions, rewards, episode = [], [], [], []
    for index, ep in enumerate(dataset):
        image = ep["image"][..., 0]  # gray [T, H, W]
        steps = len(image) - 1
        window = np.clip(np.arange(steps)[:, None] + np.arange(1 - stack, 1)[None], 0, None)
        frames.append(image[window])
        actions.append(ep["action"][1:].argmax(1))  # row t+1 holds a_t and r_{t+1} (xfer.data.episode)
        rewards.append(np.sign(ep["reward"][1:]))
        episode.append(np.full(steps, index))
    return tuple(np.concatenate(x) for x in (frames, actions, rewards, episode))


class RewardProbe(nn.Module):
    def __init__(self, stack: int, size: int, actions: int) -> None:
        super().__init__()
        self.actions = actions
        self.conv = nn.Sequential(nn.Conv2d(stack, 32, 8, 4), nn.ReLU(), nn.Conv2d(32, 64, 4, 2), nn.ReLU(),
                                  nn.Conv2d(64, 64, 3, 1), nn.ReLU(), nn.Flatten())
        features = self.conv(torch.zeros(1, stack, size, size)).shape[1]
        self.head = nn.Sequential(nn.Linear(features + actions, 256), nn.ReLU(), nn.Linear(256, 3))

    def forward(self, frames: np.ndarray, actions: np.ndarray) -> torch.Tensor:
        features = self.conv(torch.as_tensor(frames).float() / 255.0)
        one_hot = nn.functional.one_hot(torch.as_tensor(actions), self.actions).float()
        return self.head(torch.cat([features, one_hot], 1))  # logits of sign -1, 0, +1


def held_out_scores(probe: RewardProbe, frames: np.ndarray, actions: np.ndarray,
                    signs: np.ndarray) -> dict[str, float]:
    with torch.no_grad():
        chunks = [probe(frames[i:i + 256], actions[i:i + 256]).softmax(1) for i in range(0, len(frames), 256)]
    probs = torch.cat(chunks).numpy()
    expected = probs[:, 2] - probs[:, 0]
    out = {"corr": float(np.corrcoef(expected, signs)[0, 1]) if expected.std() > 0 else float("nan")}
    for name, mask in (("pred_on_pos", signs > 0), ("pred_on_neg", signs < 0), ("pred_on_zero", signs == 0)):
        out[name] = float(expected[mask].mean()) if mask.any() else float("nan")
    return out


def screen(game: str, args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    settings = EnvSettings.model_validate({"image_size": args.image_size, "time_limit": args.time_limit,
                                           "options": {"color": "gray"}})
    start = time.perf_counter()
    dataset = Dataset.open(collect("atari", game, settings, "random", args.episodes, workdir / game,
                                   seed=args.seed, progress=False))
    frames, actions, signs, episode = frames_actions_rewards(dataset, args.stack)
    collect_s = time.perf_counter() - start
    held = episode >= episode.max() + 1 - args.held
    fit = np.flatnonzero(~held)
    rewarded = fit[signs[fit] != 0]
    result: dict[str, object] = {"game": game, "steps": len(signs), "fitted_steps": len(fit),
                                 "rewarded": float((signs != 0).mean()), "collect_s": round(collect_s, 1)}
    if len(rewarded) == 0 or not (signs[held] != 0).any():
        return {**result, "corr": float("nan"), "note": "no rewarded step (fitted or held out)"}
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    probe = RewardProbe(args.stack, args.image_size, dataset.action_size)
    optimiser = torch.optim.Adam(probe.parameters(), lr=args.lr)
    curve = []
    for update in range(1, args.updates + 1):
        batch = rng.choice(fit, 64)
        batch[:16] = rng.choice(rewarded, 16)
        loss = nn.functional.cross_entropy(probe(frames[batch], actions[batch]),
                                           torch.as_tensor(signs[batch]).long() + 1)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if update % args.every == 0:
            scores = held_out_scores(probe, frames[held], actions[held], signs[held])
            curve.append({"updates": update, **scores})
            print(f"{game} {update} updates: held-out corr {scores['corr']:.3f} (pred on +1 / -1 / 0: "
                  f"{scores['pred_on_pos']:.2f} / {scores['pred_on_neg']:.2f} / "
                  f"{scores['pred_on_zero']:.2f})", flush=True)
    return {**result, **curve[-1], "best_corr": max(c["corr"] for c in curve), "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("games", nargs="+")
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--held", type=int, default=4, help="last episodes held out")
    parser.add_argument("--time-limit", type=int, default=8000, help="frames per episode at most")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--stack", type=int, default=4)
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datadir", type=Path, default=None, help="keep the collected data here")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.datadir or Path(tmp)
        results = [screen(game, args, workdir) for game in args.games]
    print("| game | steps | rewarded | held-out corr (last / best) |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['game']} | {r['steps']} | {100 * float(r['rewarded']):.1f} % | "
              f"{float(r['corr']):.2f} / {float(r.get('best_corr', float('nan'))):.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()},
                                         "results": results}, indent=1))


if __name__ == "__main__":
    main()
