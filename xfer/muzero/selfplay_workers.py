"""Self-play in worker processes: environments and their batched search beside the learner.

EfficientZero's code runs self-play in Ray actors that keep playing with the latest weights while the
learner trains. :class:`SelfPlayWorkers` is that with one process per worker:

- the run's ``num_envs`` environments are split evenly over the workers; each holds a
  :class:`~xfer.muzero.agent.SelfPlay` of its share and a copy of the acting network;
- :meth:`SelfPlayWorkers.submit` asks every worker for the next ``steps`` agent steps, and the learner
  trains the updates the chunk before owes while they play (:class:`xfer.muzero.loop.OnlineLoop`);
  requests are ordered, so a chunk acts with the acting network of the moment it was asked for;
- :meth:`SelfPlayWorkers.receive` returns the chunk as one ``(replay entries, ended games' returns)``
  per agent step, workers in order, as the in-process :meth:`SelfPlay.step` returns it.

What differs from in-process self-play (``selfplay.workers: 0``): the acting network lags by one chunk,
updates come in bursts of one chunk's worth, and each worker's exploration noise and reset seeds come from
its own generator, seeded from the run's stream for every chunk. Runs stay deterministic and resume
exactly: the loop checkpoints between chunks, when nothing is in flight, and stores each worker's
:meth:`SelfPlay.state_dict` (restored there by replaying its actions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xfer.envs.settings import EnvSettings
from xfer.errors import XferError
from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.processes import WorkerPool, answer, load_weights
from xfer.registry import SuiteSpec

Chunk = list[tuple[list[Any], list[float]]]  # per agent step: (replay entries, returns of ended games)


@dataclass(frozen=True)
class EnvRecipe:
    """What a worker needs to build its environments: the suite, the task and the resolved settings."""

    spec: SuiteSpec
    task: str
    settings: EnvSettings


def _worker_main(index: int, cfg_json: str, env: EnvRecipe, seeds: list[int], legal: np.ndarray, task_id: int,
                 segment_length: int, device: str, threads: int, requests: Any, replies: Any) -> None:
    """A worker: its environments, their SelfPlay and an acting-network copy, answering in order."""
    from xfer.envs.make import make_from_spec
    from xfer.muzero.agent import MuZeroAgent, SelfPlay
    from xfer.muzero.networks import EfficientZeroNet

    torch.set_num_threads(threads)
    cfg = EfficientZeroConfig.model_validate_json(cfg_json)
    envs = [make_from_spec(env.spec, env.task, env.settings, seed) for seed in seeds]
    selfplay = SelfPlay(envs, cfg, legal, task_id, segment_length)
    agent = MuZeroAgent(EfficientZeroNet(cfg).eval().requires_grad_(False), cfg, legal, device=device)

    def start(seed: int) -> None:
        selfplay.start(np.random.default_rng(seed))

    def play(steps: int, temperature: float, seed: int) -> Chunk:
        rng = np.random.default_rng(seed)
        return [selfplay.step(agent, temperature, rng) for _ in range(steps)]

    try:
        while True:
            message = requests.get()
            kind = message[0]
            if kind == "stop":
                return
            if kind == "weights":
                load_weights(agent.net, message[1])
            elif kind == "start":
                answer(replies, ("start", index), lambda s=message[1]: start(s))
            elif kind == "play":
                answer(replies, ("play", index, message[1]), lambda m=message: play(*m[2:]))
            elif kind == "state":
                answer(replies, ("state", index), selfplay.state_dict)
            elif kind == "restore":
                answer(replies, ("restore", index), lambda s=message[1]: selfplay.restore(s))
    finally:
        selfplay.close()


class SelfPlayWorkers:
    """``workers`` processes playing ``len(seeds)`` environments of one task (see the module docstring).

    ``seeds`` are the environments' construction seeds, in order (worker ``i`` gets the ``i``-th share);
    ``device``: where the workers' acting networks evaluate the search's leaves; ``threads``: torch threads
    per worker.
    """

    def __init__(self, cfg: EfficientZeroConfig, env: EnvRecipe, seeds: np.ndarray, legal: np.ndarray,
                 workers: int, task_id: int = 0, segment_length: int = 400,
                 device: str | torch.device = "cpu", threads: int = 1) -> None:
        if workers < 1 or len(seeds) % workers:
            raise XferError(f"selfplay.workers {workers} must divide selfplay.num_envs {len(seeds)}",
                            hint="each worker plays an equal share of the environments")
        share = len(seeds) // workers
        args = [(cfg.model_dump_json(), env, [int(s) for s in seeds[i * share:(i + 1) * share]],
                 np.asarray(legal, bool), task_id, segment_length, str(device), threads)
                for i in range(workers)]
        self._pool = WorkerPool(_worker_main, args, name="xfer-selfplay",
                                hint="`xfer resume` continues the run from its last checkpoint; with "
                                     "`selfplay.workers: 0` the learner's process plays itself")
        self._chunks = 0
        self.in_flight = False

    def _all(self, kind: str, messages: list[tuple[Any, ...]]) -> list[Any]:
        for i, message in enumerate(messages):
            self._pool.send(i, message)
        return [self._pool.receive((kind, i)) for i in range(len(self._pool))]

    def start(self, rng: np.random.Generator) -> None:
        """New games in every environment, one seed per worker drawn from ``rng``."""
        self._all("start", [("start", int(rng.integers(2**63))) for _ in range(len(self._pool))])

    def submit(self, net: torch.nn.Module, version: int, steps: int, temperature: float,
               rng: np.random.Generator) -> None:
        """Ask every worker for ``steps`` agent steps, acting with ``net`` (sent when ``version`` changed)."""
        assert not self.in_flight, "receive() the chunk in flight first"
        self._pool.send_weights(net, version)
        for i in range(len(self._pool)):
            self._pool.send(i, ("play", self._chunks, steps, float(temperature), int(rng.integers(2**63))))
        self.in_flight = True

    def receive(self) -> Chunk:
        """The chunk in flight, per agent step: every worker's replay entries and returns, in worker order."""
        assert self.in_flight, "submit() a chunk first"
        parts = [self._pool.receive(("play", i, self._chunks)) for i in range(len(self._pool))]
        self._chunks += 1
        self.in_flight = False
        return [([g for games, _ in step for g in games], [r for _, returns in step for r in returns])
                for step in zip(*parts, strict=True)]

    def state_dict(self) -> dict[str, Any]:
        assert not self.in_flight, "checkpoints are taken between chunks"
        return {"workers": self._all("state", [("state",)] * len(self._pool))}

    def restore(self, state: dict[str, Any]) -> None:
        if len(state["workers"]) != len(self._pool):
            raise XferError(f"the checkpoint was written with {len(state['workers'])} self-play workers, "
                            f"the recipe now has {len(self._pool)}",
                            hint="resume with the recipe's former selfplay.workers")
        self._all("restore", [("restore", s) for s in state["workers"]])

    def close(self) -> None:
        self._pool.close()
