"""What an EfficientZero model knows about its own replay: does its value follow the returns that came, does
its reward follow the rewards that came, and do its action values differ between actions?

MCTS can only improve on the prior where the model's one-step action values ``Q(s, a) = r̂(s, a) + γ·v̂(s')``
differ between actions; visit counts from a model whose values are flat are near-uniform (the policy
targets carry nothing) and a greedy search breaks its ties by action order. So before tuning search or
schedules on a run that does not learn, measure what the model predicts on the states the run played:

    python -m xfer.muzero.diagnostics RUN_OR_CHECKPOINT [--games 40] [--positions 20] [--json]

reads the checkpoint's acting network and the replay saved with it (the newest ``games`` games or segments,
``positions`` evenly spaced positions of each) and reports

- ``value_corr``: Pearson correlation of the root value v̂(s_t) with the discounted return-to-go
  Σ_k γ^k r_{t+k}, over positions of games that ended in a terminal state (where that sum is exact;
  segments cut by the replay are left out), with both means (``value_pred_mean``, ``return_mean``);
- ``reward_corr``: correlation of the one-step predicted reward r̂(s_t, a_t) (the value prefix after one
  model step) with the stored reward r_t, the reward rate and the mean prediction on rewarded and
  unrewarded steps;
- ``q_spread_median``: the median over positions of max − min over the legal actions of Q(s, a).

Rewards are the replay's (clipped where the recipe clips), γ the model's per-step discount. Everything runs
in eval mode, as self-play, reanalyse and evaluation use the network.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.replay import GameHistory


def returns_to_go(rewards: np.ndarray, discount: float) -> np.ndarray:
    """``G_t = Σ_k γ^k r_{t+k}`` for every step of a game that ended after its last reward."""
    out = np.zeros(len(rewards) + 1)
    for t in range(len(rewards) - 1, -1, -1):
        out[t] = rewards[t] + discount * out[t + 1]
    return out[:-1]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if len(a) > 1 and a.std() > 0 and b.std() > 0 else float("nan")


@torch.no_grad()
def model_knowledge(net: Any, cfg: EfficientZeroConfig, games: Sequence[GameHistory], legal: np.ndarray,
                    positions: int = 20) -> dict[str, float]:
    """The module docstring's measures over ``positions`` evenly spaced positions of each game."""
    net.eval()
    actions = np.flatnonzero(np.asarray(legal, bool))
    values, returns, pred_r, real_r, spreads = [], [], [], [], []
    for game in games:
        steps = np.unique(np.linspace(0, len(game) - 1, min(positions, len(game))).astype(int))
        obs = torch.as_tensor(np.stack([game.stacked_obs(int(t), cfg.frame_stack) for t in steps]))
        root = net.initial_inference(obs)
        # one model step per action that is legal or was played (in a run the played ones are legal)
        tried = np.union1d(actions, game.actions[steps])
        rows = len(steps)
        outs = [net.recurrent_inference(root.latent, root.reward_hidden, torch.full((rows,), int(a)))
                for a in tried]
        reward = torch.stack([out.value_prefix for out in outs], 1).numpy()  # [n, tried]
        q = reward + cfg.discount * torch.stack([out.value for out in outs], 1).numpy()
        q = q[:, np.isin(tried, actions)]  # [n, legal]
        pred_r.append(reward[np.arange(rows), np.searchsorted(tried, game.actions[steps])])
        real_r.append(game.rewards[steps])
        spreads.append(q.max(axis=1) - q.min(axis=1))
        if game.terminal:
            values.append(root.value.numpy())
            returns.append(returns_to_go(game.rewards, cfg.discount)[steps])
    v, g = (np.concatenate(x) if x else np.zeros(0) for x in (values, returns))
    rh, r = np.concatenate(pred_r), np.concatenate(real_r)
    rewarded = r != 0
    return {
        "games": float(len(games)), "positions": float(len(r)), "terminal_positions": float(len(v)),
        "value_corr": _corr(v, g), "value_pred_mean": float(v.mean()) if len(v) else float("nan"),
        "return_mean": float(g.mean()) if len(g) else float("nan"),
        "reward_corr": _corr(rh, r), "reward_rate": float(rewarded.mean()),
        "reward_pred_rewarded": float(rh[rewarded].mean()) if rewarded.any() else float("nan"),
        "reward_pred_unrewarded": float(rh[~rewarded].mean()) if (~rewarded).any() else float("nan"),
        "q_spread_median": float(np.median(np.concatenate(spreads))),
    }


def run_replay(rundir: Path, overrides: dict[str, Any] | None = None
               ) -> tuple[EfficientZeroConfig, list[GameHistory]]:
    """A run's model config (with ``overrides`` of its fields) and the games of the replay saved with its
    newest checkpoint: the data the offline fits of ``benchmarks/ez_replay_fit.py`` and
    ``benchmarks/ez_loss_gradients.py`` train a fresh learner on."""
    from xfer.muzero.replay import PrioritizedReplay
    from xfer.run.checkpoint import load_run_checkpoint

    state = load_run_checkpoint(Path(rundir))["method"]
    cfg = EfficientZeroConfig.model_validate({**state["agent"]["config"], **(overrides or {})})
    return cfg, PrioritizedReplay.load(Path(rundir) / state["replay_dir"], cfg).games


def run_model_knowledge(target: Path, games: int = 40, positions: int = 20) -> dict[str, float]:
    """:func:`model_knowledge` of a run's newest checkpoint (or the checkpoint file ``target``) on the newest
    ``games`` games of the replay saved with it."""
    from rich.console import Console

    from xfer.errors import XferError
    from xfer.muzero.agent import MuZeroAgent
    from xfer.muzero.replay import PrioritizedReplay
    from xfer.run.checkpoint import load_run_checkpoint
    from xfer.run.evaluate import load_run_agent

    run = load_run_agent(target, "cpu", Console(stderr=True))
    agent = run.agent
    if not isinstance(agent, MuZeroAgent):
        raise XferError(f"{str(target)!r} is a {run.recipe.method} run: this diagnostic reads EfficientZero "
                        "agents", hint="for dreamer and vid2act runs use python -m xfer.dreamer.plan_rewards")
    rundir = run.checkpoint.parent.parent
    replay_dir = load_run_checkpoint(rundir, run.checkpoint).get("method", {}).get("replay_dir")
    if not replay_dir or not (rundir / replay_dir).is_dir():
        raise XferError(f"the checkpoint {str(run.checkpoint)!r} has no saved replay next to it",
                        hint="use a checkpoint of an efficientzero run directory (its replay-<step>/ kept)")
    replay = PrioritizedReplay.load(rundir / replay_dir, agent.cfg)
    if not replay.games:
        raise XferError(f"the replay {replay_dir!r} of {str(rundir)!r} holds no games")
    torch.manual_seed(0)
    result = model_knowledge(agent.net, agent.cfg, replay.games[-games:], agent.legal_mask, positions)
    return {"checkpoint_step": float(run.step), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Path, help="run directory or a checkpoint file inside one")
    parser.add_argument("--games", type=int, default=40, help="the newest this many games of the replay")
    parser.add_argument("--positions", type=int, default=20, help="evenly spaced positions per game")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from xfer.run.report import print_report

    print_report(lambda: run_model_knowledge(args.target, args.games, args.positions), args.json)


if __name__ == "__main__":
    main()
