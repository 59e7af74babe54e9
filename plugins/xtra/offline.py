"""Offline games for XTRA: xfer datasets as prioritised replays of :class:`GameHistory` entries.

A dataset episode (:mod:`xfer.data.episode`) has ``T`` rows: ``image`` row t is o_t (Atari: 4 stacked frames,
newest last), ``action``/``reward`` row t led to / arrived with o_t (one-hot, zero at t = 0). As a game
history: frames = the newest frame of each row, actions[t] = argmax action[t + 1], rewards[t] = reward[t + 1]
clipped to its sign (XTRA Table 4: reward clipping), terminal = ``is_terminal`` of the last row. Offline data
carries no search statistics: the stored policy is the behaviour action (one-hot) and root values are 0;
both are replaced by reanalyse (ratio 1, Table 4) whenever a batch is made.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xfer.errors import XferError
from xfer.muzero.agent import newest_frame
from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.replay import GameHistory, PrioritizedReplay


def episode_to_game(episode: dict[str, np.ndarray], cfg: EfficientZeroConfig, legal: np.ndarray,
                    task_id: int, clip_rewards: bool = True) -> GameHistory | None:
    """One dataset episode as a game history (``None`` for an episode without a single step)."""
    steps = len(episode["reward"]) - 1
    if steps < 1:
        return None
    if episode["action"].shape[1] != cfg.n_actions:
        raise XferError(f"dataset actions have {episode['action'].shape[1]} entries, the model's head has "
                        f"{cfg.n_actions}", hint="collect Atari datasets with the full 18-action set")
    actions = np.argmax(episode["action"][1:], axis=1).astype(np.int64)
    rewards = episode["reward"][1:].astype(np.float32)
    if clip_rewards:
        rewards = np.sign(rewards).astype(np.float32)
    policies = np.zeros((steps, cfg.n_actions), np.float32)
    policies[np.arange(steps), actions] = 1.0
    return GameHistory(frames=newest_frame(episode["image"], cfg), actions=actions, rewards=rewards,
                       policies=policies, root_values=np.zeros(steps, np.float32), legal_mask=legal,
                       terminal=bool(episode["is_terminal"][-1]), task_id=task_id)


def offline_replay(episodes: list[dict[str, np.ndarray]], cfg: EfficientZeroConfig, legal: np.ndarray,
                   task_id: int, clip_rewards: bool = True) -> PrioritizedReplay:
    """A replay holding every episode (its capacity grows to the dataset: nothing is evicted)."""
    games = [g for g in (episode_to_game(e, cfg, legal, task_id, clip_rewards) for e in episodes) if g]
    if not games:
        raise XferError("an offline dataset has no episode with at least one step")
    size = sum(len(g) for g in games)
    replay = PrioritizedReplay(cfg.model_copy(update={"replay_capacity": max(size, cfg.replay_capacity)}))
    for game in games:
        replay.add(game)
    return replay


def priorities_state(replay: PrioritizedReplay) -> dict[str, Any]:
    """The mutable part of an offline replay (its games are rebuilt from the dataset on resume)."""
    return {"priorities": [p.copy() for p in replay.priorities], "max_priority": replay.max_priority}


def load_priorities(replay: PrioritizedReplay, state: dict[str, Any]) -> None:
    if len(state["priorities"]) != len(replay.priorities):
        raise XferError("an offline dataset changed since the checkpoint was written "
                        f"({len(replay.priorities)} episodes now, {len(state['priorities'])} then)")
    replay.priorities = [np.asarray(p, float).copy() for p in state["priorities"]]
    replay.max_priority = float(state["max_priority"])
