"""Reanalyse in worker processes: the network part of each batch computed ahead of the learner.

The network part of an EfficientZero batch (value bootstraps by the target network and reanalysed
policies by a fresh search, :func:`~xfer.muzero.targets.network_part`) is most of an update's time on a
CPU (1.5 of 2.5 s at the ``atari-cpu`` sizes with every policy target reanalysed by 16 simulations, the
preset's earlier settings). EfficientZero's code runs it in Ray actors that fill a
queue of batches the learner takes from; :class:`BatchWorkers` is that with one process per worker:

- the learner's process gathers each update's batches from the replays (numpy only,
  :func:`~xfer.muzero.targets.gather_job`; one batch for EfficientZero, the target's and each offline
  game's for XTRA's Stage 2) and sends their observations to a worker, round robin, keeping ``workers``
  jobs in flight while it trains on the oldest;
- each worker holds a copy of the target network, sent again whenever the learner's target changes
  (messages are ordered, so a batch is computed with the target network of the moment it was gathered);
- results come back in order and become train batches (:func:`~xfer.muzero.targets.finish_job`).

What differs from the in-process order (``reanalyse_workers: 0``): a batch is sampled ``workers`` updates
before it is trained on, so it misses those updates' priorities and target refreshes (EZ code's batch
queue lags the same way), and its search noise comes from a seed drawn from the run's stream when it is
gathered. Runs stay deterministic and resume exactly: :meth:`BatchWorkers.state_dict` waits for the
batches in flight and stores them, and a resumed run trains on them first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.processes import WorkerPool, answer, load_weights
from xfer.muzero.targets import BatchJob, TargetSource, TrainBatch, finish_job, network_part


def _worker_main(index: int, cfg_json: str, device: str, threads: int, requests: Any, replies: Any) -> None:
    """A worker: a target-network copy answering jobs in order until told to stop."""
    from xfer.muzero.networks import EfficientZeroNet

    torch.set_num_threads(threads)
    cfg = EfficientZeroConfig.model_validate_json(cfg_json)
    net = EfficientZeroNet(cfg).to(device).eval().requires_grad_(False)

    def compute(parts: list[Any], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng(seed)
        with torch.no_grad():
            return [network_part(TargetSource(net, *modes), cfg, rng, value_obs, fresh_obs, fresh_legal)
                    for value_obs, fresh_obs, fresh_legal, modes in parts]

    while True:
        message = requests.get()
        if message[0] == "stop":
            return
        if message[0] == "weights":
            load_weights(net, message[1])
            continue
        _, job_id, parts, seed = message
        answer(replies, job_id, lambda parts=parts, seed=seed: compute(parts, seed))


Result = list[tuple[np.ndarray, np.ndarray]]  # (values, reanalysed policies) per part of a job


@dataclass
class _InFlight:
    job_id: int
    parts: list[BatchJob]
    result: Result | None = None


class BatchWorkers:
    """``workers`` processes computing the network part of the next batches (see the module docstring).

    ``device``: where the workers run their network copy (the learner's device by default in the runs);
    ``threads``: torch threads per worker.
    """

    def __init__(self, cfg: EfficientZeroConfig, workers: int, device: str | torch.device = "cpu",
                 threads: int = 1) -> None:
        if workers < 1:
            raise ValueError("BatchWorkers needs at least one worker")
        self.depth = workers
        self._pool = WorkerPool(_worker_main, [(cfg.model_dump_json(), str(device), threads)] * workers,
                                name="xfer-reanalyse",
                                hint="`xfer resume` continues the run from its last checkpoint; with "
                                     "`reanalyse_workers: 0` the learner computes the targets itself")
        self._inflight: deque[_InFlight] = deque()
        self._next_id = 0

    # -- the learner's side --
    def next_batches(self, sources: list[TargetSource], target_version: int,
                     gather: Callable[[], list[BatchJob]], rng: np.random.Generator,
                     device: str | torch.device) -> list[TrainBatch]:
        """The oldest job's batches, after sending one more job.

        A job is the batches one update trains on (one for EfficientZero; the target's and each offline
        game's for XTRA): ``gather`` samples and gathers them, ``sources[i]`` says how part i's targets are
        made. All sources share one network (the learner's target network), whose weights the workers copy
        whenever ``target_version`` changes.
        """
        if any(source.net is not sources[0].net for source in sources):
            raise ValueError("BatchWorkers: every part of a job must use the same target network")
        while len(self._inflight) < self.depth:
            self._submit(sources, target_version, gather, rng)
        oldest = self._inflight.popleft()
        self._submit(sources, target_version, gather, rng)  # the workers compute while the learner trains
        result = oldest.result or self._pool.receive(oldest.job_id)
        return [finish_job(job, values, fresh, device)
                for job, (values, fresh) in zip(oldest.parts, result, strict=True)]

    def _submit(self, sources: list[TargetSource], target_version: int, gather: Callable[[], list[BatchJob]],
                rng: np.random.Generator) -> None:
        self._pool.send_weights(sources[0].net, target_version)
        parts = gather()
        job_id = self._next_id
        self._next_id += 1
        seed = int(rng.integers(2**63))
        message = [(job.value_obs, job.reanalyse_obs, job.reanalyse_legal,
                    (source.value_mode, source.policy_mode, source.mcts_noise))
                   for job, source in zip(parts, sources, strict=True)]
        self._pool.send(job_id % self.depth, ("job", job_id, message, seed))
        self._inflight.append(_InFlight(job_id, parts))

    # -- state --
    def state_dict(self) -> dict[str, Any]:
        """The batches in flight, waited for: a resumed run trains on exactly these next."""
        for entry in self._inflight:
            if entry.result is None:
                entry.result = self._pool.receive(entry.job_id)
        return {"jobs": [[{"job": asdict(job), "values": values, "fresh": fresh}
                          for job, (values, fresh) in zip(e.parts, e.result or [], strict=True)]
                         for e in self._inflight]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._inflight = deque(
            _InFlight(-1 - i, [BatchJob(**part["job"]) for part in parts],
                      [(part["values"], part["fresh"]) for part in parts])
            for i, parts in enumerate(state["jobs"]))

    def close(self) -> None:
        self._pool.close()
