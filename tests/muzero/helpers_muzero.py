"""Tiny gymnasium tasks with known optimal returns, for EfficientZero learning tests.

- :class:`CueBandit`: a 16x16 grey frame whose grey level is the cue (one of 4); reward 1 iff the action
  equals the cue; 10 steps. Random play returns 2.5, optimal 10. Needs an action-dependent reward model.
- :class:`Corridor`: 5 cells in a row shown as a bright pixel on a dark 16x16 frame; actions left / right;
  the only reward, 1, comes on reaching the right end, 4 steps from the start; 12 steps at most. Needs
  values bootstrapped over >= 3 steps (or a 4-step search) to find the way.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

SIZE = 16


class CueBandit(gym.Env):
    n_actions = 4

    def __init__(self, steps: int = 10) -> None:
        self.steps = steps
        self.observation_space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (SIZE, SIZE, 1), np.uint8)})
        self.action_space = gym.spaces.Discrete(self.n_actions)
        self.t, self.cue = 0, 0

    def _obs(self) -> dict[str, Any]:
        return {"image": np.full((SIZE, SIZE, 1), 40 + 60 * self.cue, np.uint8), "is_first": self.t == 0}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.t, self.cue = 0, int(self.np_random.integers(self.n_actions))
        return self._obs(), {}

    def step(self, action: int) -> Any:
        reward = float(int(action) == self.cue)
        self.t += 1
        self.cue = int(self.np_random.integers(self.n_actions))
        return self._obs(), reward, self.t >= self.steps, False, {}


class Corridor(gym.Env):
    n_actions = 2

    def __init__(self, length: int = 5, limit: int = 12) -> None:
        self.length, self.limit = length, limit
        self.observation_space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (SIZE, SIZE, 1), np.uint8)})
        self.action_space = gym.spaces.Discrete(self.n_actions)
        self.t, self.pos = 0, 0

    def _obs(self) -> dict[str, Any]:
        image = np.zeros((SIZE, SIZE, 1), np.uint8)
        col = 1 + 3 * self.pos
        image[6:10, col:col + 2] = 255
        return {"image": image, "is_first": self.t == 0}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.t, self.pos = 0, 0
        return self._obs(), {}

    def step(self, action: int) -> Any:
        self.t += 1
        self.pos = int(np.clip(self.pos + (1 if int(action) == 1 else -1), 0, self.length - 1))
        done = self.pos == self.length - 1
        return self._obs(), float(done), done, self.t >= self.limit, {}


def learn(env_cls: type[gym.Env], updates: int, seed: int = 0, num_envs: int = 4, eval_every: int = 0,
          **overrides: Any) -> list[float]:
    """EfficientZero through xfer's public pieces, as the ``efficientzero`` loop does: batched-MCTS self-play
    (one update per agent step of the ``num_envs`` environments), prioritised replay, targets reanalysed by
    the target network with the off-policy correction, the Learner; greedy returns (8 episodes) every
    ``eval_every`` updates and at the end."""
    import torch

    from xfer.muzero.agent import MuZeroAgent, SelfPlay
    from xfer.muzero.config import EfficientZeroConfig
    from xfer.muzero.learner import Learner
    from xfer.muzero.loop import efficientzero_update, evaluate, visit_temperature
    from xfer.muzero.replay import PrioritizedReplay

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = EfficientZeroConfig.model_validate({"preset": "tiny-cpu", "image_size": SIZE, "image_channels": 1,
                                              "n_actions": env_cls.n_actions,
                                              **overrides})
    learner, replay = Learner(cfg), PrioritizedReplay(cfg)
    envs = [env_cls() for _ in range(num_envs)]
    for i, env in enumerate(envs):
        env.reset(seed=seed * 1000 + i)
    selfplay = SelfPlay(envs, cfg, np.ones(cfg.n_actions, bool))
    selfplay.start(rng)
    eval_envs = [env_cls() for _ in range(8)]
    returns: list[float] = []
    done = 0
    while done < updates:
        temperature = visit_temperature(learner.train_step, cfg.training_steps, (1.0, 0.5, 0.25))
        games, _ = selfplay.step(MuZeroAgent(learner.net, cfg), temperature, rng)
        for game in games:
            replay.add(game)
        if replay.num_transitions < cfg.min_replay_size:
            continue
        efficientzero_update(learner, replay, rng)
        done += 1
        if done == updates or (eval_every and done % eval_every == 0):
            result = evaluate(MuZeroAgent(learner.net, cfg), eval_envs, rng.integers(2**31, size=8))
            returns.append(result["eval/return"])
    return returns


class StateBandit(CueBandit):
    """The cue bandit with a state vector (the one-hot cue) instead of a frame, for the mlp networks."""

    def __init__(self, steps: int = 10) -> None:
        super().__init__(steps)
        self.observation_space = gym.spaces.Dict({"state": gym.spaces.Box(0.0, 1.0, (4,), np.float32)})

    def _obs(self) -> dict[str, Any]:
        return {"state": np.eye(4, dtype=np.float32)[self.cue], "is_first": self.t == 0}
