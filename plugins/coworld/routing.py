"""Several source simulators behind the one environment and replay that :func:`xfer.dreamer.loop.train_online`
drives, so single- and multi-source CoWorld share the online loop (and its checkpoint/resume contract).

:class:`SourceRouter` is both the loop's ``envs`` (``reset``/``step``/``store``/random and zero actions) and
its ``replay`` (``num_sequences``/``state_dict``/``load_state_dict``). It switches the active source only at
``reset`` — the start of a loop round, where no environment state needs saving — by asking ``choose()``:
during the warm-up the first source that has not had ``warmup_steps`` environment steps, afterwards the
source the learner wants to train (the selected one, or round-robin). Each source keeps its own replay
directory; batches come from the active source's replay. Padded action entries (see
:mod:`xfer_plugins.coworld.agents`) are zeroed in every action that reaches a source simulator and its replay.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from xfer.data.replay import ReplayBuffer
from xfer.dreamer.loop import TRAIN_KEYS, BatchSource, EnvBatch


class SourceRouter:
    def __init__(self, envs: Sequence[EnvBatch], replays: Sequence[ReplayBuffer], natives: Sequence[int],
                 warmup_steps: int) -> None:
        if len({env.n for env in envs}) != 1:
            raise ValueError("every source needs the same number of parallel environments")
        self.envs, self.replays, self.natives = list(envs), list(replays), list(natives)
        self.warmup_steps = warmup_steps
        self.steps = [0] * len(self.envs)
        self.active = 0
        self.choose: Callable[[], int] = lambda: 0

    # -- schedule -----------------------------------------------------------------------------------------
    def warming(self, index: int) -> bool:
        return self.steps[index] < self.warmup_steps

    @property
    def all_warm(self) -> bool:
        return not any(self.warming(i) for i in range(len(self.envs)))

    @property
    def total_steps(self) -> int:
        return sum(self.steps)

    def co_training_steps(self) -> int:
        """Source environment steps since every source finished its warm-up."""
        return max(0, self.total_steps - len(self.envs) * self.warmup_steps) if self.all_warm else 0

    # -- the loop's environment ---------------------------------------------------------------------------
    @property
    def env(self) -> Any:
        return self.envs[self.active].env

    @property
    def n(self) -> int:
        return self.envs[self.active].n

    @property
    def repeat(self) -> int:
        return self.envs[self.active].repeat

    def zero_padding(self, action: np.ndarray) -> np.ndarray:
        action = np.array(action, dtype=np.float32, copy=True)
        action[..., self.natives[self.active]:] = 0.0
        return action

    def reset(self, seeds: Sequence[int]) -> dict[str, np.ndarray]:
        warming = [i for i in range(len(self.envs)) if self.warming(i)]
        self.active = warming[0] if warming else int(self.choose())
        return self.envs[self.active].reset(seeds)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        env = self.envs[self.active]
        result = env.step(self.zero_padding(action))
        self.steps[self.active] += env.n * env.repeat
        return result

    def zero_actions(self) -> np.ndarray:
        return self.envs[self.active].zero_actions()

    def random_actions(self, rng: np.random.Generator) -> np.ndarray:
        return self.zero_padding(self.envs[self.active].random_actions(rng))

    def store(self, replay: Any, obs: Mapping[str, np.ndarray], action: np.ndarray, reward: np.ndarray,
              success: np.ndarray) -> None:
        """Append the rows to the *active source's* replay (``replay`` is this router)."""
        env, replay = self.envs[self.active], self.replays[self.active]
        env.store(replay, obs, self.zero_padding(action), reward, success)

    def close(self) -> None:
        for env in self.envs:
            env.env.close()

    # -- the loop's replay --------------------------------------------------------------------------------
    def num_sequences(self, length: int) -> int:
        return self.replays[self.active].num_sequences(length)

    def batches(self, batch: int, length: int, obs_keys: Sequence[str]) -> BatchSource:
        keys = (*obs_keys, *TRAIN_KEYS)

        def sample(rng: np.random.Generator) -> dict[str, np.ndarray]:
            data = self.replays[self.active].sample(batch, length, rng)
            return {key: data[key] for key in keys if key in data}

        return sample

    def state_dict(self) -> dict[str, Any]:
        return {"active": self.active, "steps": list(self.steps),
                "replays": [replay.state_dict() for replay in self.replays]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.active = int(state["active"])
        self.steps = [int(v) for v in state["steps"]]
        for replay, saved in zip(self.replays, state["replays"], strict=True):
            replay.load_state_dict(saved)
