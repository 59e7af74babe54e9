"""Offline games for XTRA: xfer datasets as prioritised replays of :class:`GameHistory` entries.

A dataset episode (:mod:`xfer.data.episode`) has ``T`` rows: ``image`` row t is o_t (Atari: 4 stacked frames,
newest last), ``action``/``reward`` row t led to / arrived with o_t (one-hot, zero at t = 0). As a game
history: frames = the newest frame of each row, actions[t] = argmax action[t + 1], rewards[t] = reward[t + 1]
clipped to its sign (XTRA Table 4: reward clipping), terminal = ``is_terminal`` of the last row.

Search statistics: an episode may also store the collecting agent's search, ``search_policy`` (float32
``[T, A]``, row t the root visit distribution of the search at o_t that chose the action of row t + 1; the
last row is unused) and ``search_value`` (float32 ``[T]``, the root value at o_t). They become the game's
stored policies and root values, the policy targets of ``offline_targets: stored`` (the authors' code's
offline batches). Without them the stored policy is the behaviour action (one-hot) and root values are 0,
which reanalyse replaces whenever a batch is made.
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
    if has_search(episode):
        policies = np.asarray(episode["search_policy"][:-1], np.float32)
        if policies.shape != (steps, cfg.n_actions):
            raise XferError(f"dataset search policies have shape {episode['search_policy'].shape}, "
                            f"expected ({steps + 1}, {cfg.n_actions})",
                            hint="one row per observation, over the full action head")
        values = episode.get("search_value")
        root_values = np.zeros(steps, np.float32) if values is None else np.asarray(values[:-1], np.float32)
    else:
        policies = np.zeros((steps, cfg.n_actions), np.float32)
        policies[np.arange(steps), actions] = 1.0
        root_values = np.zeros(steps, np.float32)
    return GameHistory(frames=newest_frame(episode["image"], cfg), actions=actions, rewards=rewards,
                       policies=policies, root_values=root_values, legal_mask=legal,
                       terminal=bool(episode["is_terminal"][-1]), task_id=task_id,
                       past_frames=_past_frames(episode["image"], cfg))


def _past_frames(image: np.ndarray, cfg: EfficientZeroConfig) -> np.ndarray | None:
    """The frames stacked before the newest one in the first row of stacked images [T + 1, H, W, stack·c]:
    a continued segment's real past (``GameHistory.past_frames``), copies of the first frame at an episode's
    start. ``None`` for rows of single frames."""
    first = np.asarray(image[0])
    if cfg.frame_stack < 2 or first.ndim != 3 or first.shape[-1] != cfg.obs_channels:
        return None
    frames = first.transpose(2, 0, 1).reshape(cfg.frame_stack, cfg.image_channels, *first.shape[:2])
    return np.ascontiguousarray(frames[:-1])


def has_search(episode: dict[str, np.ndarray]) -> bool:
    """Whether the episode stores the collecting agent's search policies (``search_policy``)."""
    return "search_policy" in episode


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
