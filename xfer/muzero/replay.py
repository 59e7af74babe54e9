"""Prioritised replay over game histories (Schaul et al. 2016, as used by MuZero / EfficientZero).

A :class:`GameHistory` holds one episode (or a segment of one): single frames, actions, rewards, the
search policy and root value of each step, and the game's legal-action mask over the full action head.
Each transition has a priority p_i; positions are drawn with P(i) = p_i^alpha / sum_k p_k^alpha and
weighted by w_i = (N P(i))^-beta / max_j w_j, beta annealed linearly from 0.4 to 1 (XTRA Table 4).
New games enter with the largest priority seen so far (EZ code's ``use_max_priority``); the learner
sends back |z - v| of the first unroll step as new priorities. Oldest games are evicted past capacity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from xfer.muzero.config import EfficientZeroConfig


@dataclass
class GameHistory:
    """One episode or segment of T steps; ``frames[t]`` is the frame seen before action ``actions[t]``."""

    frames: np.ndarray  # uint8 [T + 1, c, H, W]
    actions: np.ndarray  # int64 [T]
    rewards: np.ndarray  # float32 [T], already clipped if the recipe clips
    policies: np.ndarray  # float32 [T, A] search visit distributions (the stored policy targets)
    root_values: np.ndarray  # float32 [T] search values
    legal_mask: np.ndarray  # bool [A]
    terminal: bool  # the episode ended at frames[T]: no value beyond it
    task_id: int = 0
    # the frames before frames[0] when this is a later segment of an episode (oldest first, at most
    # frame_stack - 1): the stacked inputs of its first steps are what the agent saw (EZ code's
    # ``init(stacked_observations)``); empty for an episode's first segment, whose first frame repeats
    past_frames: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.past_frames is None:
            self.past_frames = np.zeros((0, *self.frames.shape[1:]), self.frames.dtype)
        if self.past_frames.shape[1:] != self.frames.shape[1:]:
            raise ValueError(f"past frames of shape {self.past_frames.shape[1:]}, frames of shape "
                             f"{self.frames.shape[1:]}")
        self.past_frames = self.past_frames.astype(self.frames.dtype, copy=False)
        steps = len(self.actions)
        if not (len(self.frames) == steps + 1 and len(self.rewards) == steps == len(self.policies)
                and len(self.root_values) == steps):
            raise ValueError(f"inconsistent game lengths: frames {len(self.frames)} (want T+1), actions "
                             f"{steps}, rewards {len(self.rewards)}, policies {len(self.policies)}")

    def __len__(self) -> int:
        return len(self.actions)

    def frame_window(self, first: int, last: int) -> np.ndarray:
        """Frames first..last (inclusive), concatenated on channels: [(n) * c, H, W]. Indices past T take
        frames[T]; negative ones take :attr:`past_frames` (index −1 is the last of them) and, before those,
        the earliest frame held."""
        past = self.past_frames
        assert past is not None
        index = np.clip(np.arange(first, last + 1), -len(past), len(self))
        if index[0] >= 0:
            return self.frames[index].reshape(-1, *self.frames.shape[2:])
        window = np.concatenate([past[index[index < 0] + len(past)], self.frames[index[index >= 0]]])
        return window.reshape(-1, *self.frames.shape[2:])

    def stacked_obs(self, t: int, stack: int) -> np.ndarray:
        """The network input at step t: the last ``stack`` frames (at an episode's start, the first frame
        repeated; in a later segment, the frames before it)."""
        return self.frame_window(t - stack + 1, t)


@dataclass
class SampledPositions:
    game_ids: np.ndarray  # int64 [B], stable ids (survive eviction of older games)
    steps: np.ndarray  # int64 [B]
    weights: np.ndarray  # float32 [B] importance weights, max 1


class PrioritizedReplay:
    """Games in insertion order with one priority array per game."""

    def __init__(self, cfg: EfficientZeroConfig) -> None:
        self.cfg = cfg
        self.games: list[GameHistory] = []
        self.priorities: list[np.ndarray] = []
        self.first_id = 0
        self.max_priority = 1.0

    @property
    def num_transitions(self) -> int:
        return sum(len(g) for g in self.games)

    def game(self, game_id: int) -> GameHistory:
        return self.games[game_id - self.first_id]

    def new_priority(self) -> float:
        """A new game's priority: the largest priority stored now (EZ code's ``priorities.max()``), or the
        largest ever seen (``new_priority: ever_max``, xfer's former rule); 1 for an empty replay."""
        if self.cfg.new_priority == "ever_max":
            return self.max_priority
        return float(max(p.max() for p in self.priorities)) if self.priorities else 1.0

    def add(self, game: GameHistory, priorities: np.ndarray | None = None) -> int:
        """Store a game (with :meth:`new_priority` unless given); evicts old games; returns its id."""
        if len(game) == 0:
            raise ValueError("cannot store an empty game")
        given = priorities is not None
        prio = np.asarray(priorities, float) if given else np.full(len(game), self.new_priority())
        self.max_priority = max(self.max_priority, float(prio.max()))
        self.games.append(game)
        self.priorities.append(prio)
        while self.num_transitions > self.cfg.replay_capacity and len(self.games) > 1:
            self.games.pop(0)
            self.priorities.pop(0)
            self.first_id += 1
        return self.first_id + len(self.games) - 1

    def beta(self, train_step: int) -> float:
        """Linear anneal of the importance-sampling exponent over ``training_steps``."""
        cfg = self.cfg
        frac = min(1.0, train_step / cfg.training_steps)
        return cfg.priority_beta_start + frac * (cfg.priority_beta_end - cfg.priority_beta_start)

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float) -> SampledPositions:
        lengths = np.array([len(g) for g in self.games])
        probs = np.concatenate(self.priorities) ** self.cfg.priority_alpha
        probs /= probs.sum()
        flat = rng.choice(probs.size, size=batch_size, p=probs)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        game_index = np.searchsorted(offsets, flat, side="right") - 1
        weights = (probs.size * probs[flat]) ** -beta
        return SampledPositions(game_ids=game_index + self.first_id, steps=flat - offsets[game_index],
                                weights=(weights / weights.max()).astype(np.float32))

    def ages(self, game_ids: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Transitions stored at or after each position: 1 for the newest (EZ code's total - idx)."""
        offsets = np.concatenate([[0], np.cumsum([len(g) for g in self.games])])
        flat = offsets[np.asarray(game_ids, np.int64) - self.first_id] + np.asarray(steps, np.int64)
        return offsets[-1] - flat

    def update_priorities(self, game_ids: np.ndarray, steps: np.ndarray, priorities: np.ndarray) -> None:
        """Set new priorities; positions of games evicted since sampling are skipped."""
        for gid, step, prio in zip(game_ids, steps, priorities, strict=True):
            index = int(gid) - self.first_id
            if 0 <= index < len(self.games):
                self.priorities[index][step] = prio
        self.max_priority = max(self.max_priority, float(np.max(priorities)))

    def save(self, directory: str | Path) -> None:
        """One compressed npz per game plus ``replay.json``; loading restores ids and priorities."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("game_*.npz"):
            old.unlink()
        for offset, (game, prio) in enumerate(zip(self.games, self.priorities, strict=True)):
            arrays = {f.name: np.asarray(getattr(game, f.name)) for f in fields(GameHistory)}
            path = directory / f"game_{self.first_id + offset:08d}.npz"
            np.savez_compressed(path, priorities=prio, **arrays)
        meta = {"first_id": self.first_id, "max_priority": self.max_priority, "games": len(self.games)}
        (directory / "replay.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: str | Path, cfg: EfficientZeroConfig) -> PrioritizedReplay:
        directory = Path(directory)
        meta = json.loads((directory / "replay.json").read_text())
        replay = cls(cfg)
        replay.first_id, replay.max_priority = meta["first_id"], meta["max_priority"]
        for path in sorted(directory.glob("game_*.npz")):
            with np.load(path) as data:  # files written before past_frames existed have none
                kwargs = {f.name: data[f.name] for f in fields(GameHistory) if f.name in data}
                kwargs["terminal"], kwargs["task_id"] = bool(kwargs["terminal"]), int(kwargs["task_id"])
                replay.games.append(GameHistory(**kwargs))
                replay.priorities.append(data["priorities"].astype(float))
        if len(replay.games) != meta["games"]:
            raise ValueError(f"{directory}: replay.json lists {meta['games']} games, "
                             f"found {len(replay.games)}")
        return replay
