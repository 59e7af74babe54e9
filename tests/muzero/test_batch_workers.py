"""Reanalyse in worker processes (xfer.muzero.batch_workers): the same targets as in the learner's process,
the target network re-sent when it changes, batches in flight kept across a checkpoint, and exact resume of
an `efficientzero` run that uses them."""

from __future__ import annotations

import copy
import os
import signal

import numpy as np
import pytest
import torch

from xfer.muzero.batch_workers import BatchWorkers
from xfer.muzero.learner import Learner
from xfer.muzero.replay import PrioritizedReplay, SampledPositions
from xfer.muzero.targets import TargetSource, finish_job, gather_job, make_batch, network_part

FIELDS = ("obs", "actions", "mask", "legal", "target_value", "target_prefix", "target_policy", "weights")


@pytest.fixture
def setup(tiny_cfg, make_game):
    cfg = tiny_cfg.model_copy(update={"init_zero": False})
    torch.manual_seed(0)
    learner = Learner(cfg)
    rng = np.random.default_rng(0)
    replay = PrioritizedReplay(cfg)
    for length in (12, 9, 7):
        replay.add(make_game(cfg, length, rng, terminal=length != 9))
    workers = BatchWorkers(cfg, 2)
    yield cfg, learner, replay, workers
    workers.close()


def _positions(seed: int) -> SampledPositions:
    rng = np.random.default_rng(seed)
    return SampledPositions(rng.integers(0, 3, 6), rng.integers(0, 7, 6), np.ones(6, np.float32))


def _next(workers: BatchWorkers, source: TargetSource, learner: Learner, gather, rng):
    """One update's single batch, the way `efficientzero_update` asks for it."""
    return workers.next_batches([source], learner.target_version, gather, rng, "cpu")[0]


def _same_batch(a, b, fields: tuple[str, ...] = FIELDS) -> None:
    for name in fields:
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-5, msg=name)


def test_split_batch_equals_make_batch(setup) -> None:
    """gather → network part → finish is make_batch in three pieces (same random draws, same targets)."""
    cfg, learner, replay, _ = setup
    source = TargetSource(learner.target_net)
    whole = make_batch(replay, _positions(1), cfg, source, np.random.default_rng(7), ages=np.arange(6) * 50)
    rng = np.random.default_rng(7)
    job = gather_job(replay, _positions(1), cfg, source, rng, ages=np.arange(6) * 50)
    values, fresh = network_part(source, cfg, rng, job.value_obs, job.reanalyse_obs, job.reanalyse_legal)
    _same_batch(whole, finish_job(job, values, fresh))
    assert len(fresh) == len(job.reanalyse_rows) > 0 and np.allclose(fresh.sum(-1), 1.0)


def test_workers_compute_what_the_learner_would(setup) -> None:
    """Each batch in order, with the search seed drawn from the run's stream when it is gathered."""
    cfg, learner, replay, workers = setup
    source = TargetSource(learner.target_net)
    rng, ref_rng = np.random.default_rng(3), np.random.default_rng(3)
    seeds = iter(range(100))

    def gather():
        return [gather_job(replay, _positions(next(seeds)), cfg, source, rng)]

    expected = []
    for k in range(3):  # what the workers see: job k gathered, then its seed drawn
        job = gather_job(replay, _positions(k), cfg, source, ref_rng)
        seed = int(ref_rng.integers(2**63))
        expected.append(finish_job(job, *network_part(source, cfg, np.random.default_rng(seed), job.value_obs,
                                                      job.reanalyse_obs, job.reanalyse_legal)))
    got = _next(workers, source, learner, gather, rng)  # sends jobs 0, 1, then 2
    _same_batch(got, expected[0])
    _same_batch(_next(workers, source, learner, gather, rng), expected[1])


def test_a_changed_target_network_is_sent_before_the_next_job(setup) -> None:
    cfg, learner, replay, workers = setup
    source = TargetSource(learner.target_net, policy_mode="network")  # no search: targets are the weights'

    rng = np.random.default_rng(0)

    def gather():
        return [gather_job(replay, _positions(4), cfg, source, rng)]

    before = _next(workers, source, learner, gather, rng)
    with torch.no_grad():
        for p in learner.net.parameters():
            p.add_(0.5 * torch.randn_like(p))
    learner.update_target()
    # two jobs were in flight with the old weights; the third (sent now) and later ones use the new ones
    stale = [_next(workers, source, learner, gather, rng) for _ in range(2)]
    fresh = _next(workers, source, learner, gather, rng)
    targets = ("target_value", "target_policy")  # the unroll actions past a history's end are random draws
    _same_batch(before, stale[0], targets)
    assert not torch.allclose(fresh.target_value, before.target_value)
    local = make_batch(replay, _positions(4), cfg, source, np.random.default_rng(0))
    _same_batch(fresh, local, targets)  # policy_mode network: no random draws reach the targets


def test_state_dict_keeps_the_batches_in_flight(setup, tiny_cfg) -> None:
    cfg, learner, replay, workers = setup
    source = TargetSource(learner.target_net)
    rng = np.random.default_rng(5)
    counter = iter(range(100))

    def gather():
        return [gather_job(replay, _positions(next(counter)), cfg, source, rng)]

    _next(workers, source, learner, gather, rng)
    state = copy.deepcopy(workers.state_dict())
    assert len(state["jobs"]) == 2
    rng_at_save, counter_at_save = copy.deepcopy(rng), 3
    following = [_next(workers, source, learner, gather, rng) for _ in range(3)]

    resumed = BatchWorkers(cfg, 2)
    try:
        resumed.load_state_dict(state)
        rng = rng_at_save
        counter = iter(range(counter_at_save, 100))
        again = [_next(resumed, source, learner, gather, rng) for _ in range(3)]
    finally:
        resumed.close()
    for a, b in zip(following, again, strict=True):
        _same_batch(a, b)


def test_a_job_of_several_batches_with_their_own_target_modes(setup) -> None:
    """XTRA's Stage 2: the target's batch (reanalysed) and an offline game's (stored policies) in one job."""
    cfg, learner, replay, workers = setup
    sources = [TargetSource(learner.target_net), TargetSource(learner.target_net, policy_mode="stored")]
    rng, ref_rng = np.random.default_rng(9), np.random.default_rng(9)

    def gather():
        return [gather_job(replay, _positions(k), cfg, source, rng) for k, source in enumerate(sources)]

    jobs = [gather_job(replay, _positions(k), cfg, source, ref_rng) for k, source in enumerate(sources)]
    part_rng = np.random.default_rng(int(ref_rng.integers(2**63)))
    expected = [finish_job(job, *network_part(source, cfg, part_rng, job.value_obs, job.reanalyse_obs,
                                              job.reanalyse_legal))
                for job, source in zip(jobs, sources, strict=True)]
    got = workers.next_batches(sources, learner.target_version, gather, rng, "cpu")
    assert len(got) == 2 and len(jobs[1].reanalyse_rows) == 0  # stored: nothing reanalysed
    for a, b in zip(got, expected, strict=True):
        _same_batch(a, b)
    with pytest.raises(ValueError, match="same target network"):
        mixed = [sources[0], TargetSource(learner.net)]
        workers.next_batches(mixed, learner.target_version, gather, rng, "cpu")


def test_workers_outlive_ctrl_c(setup) -> None:
    """A Ctrl-C reaches the whole process group; the run's process answers it by checkpointing, which waits
    for the batches in flight, so the workers must not die of it (they did before: KeyboardInterrupt), even
    while they are still starting (importing torch)."""
    cfg, learner, replay, _ = setup
    workers = BatchWorkers(cfg, 2)
    try:
        for proc in workers._pool._procs:  # at once: the workers are still starting
            os.kill(proc.pid, signal.SIGINT)
        source = TargetSource(learner.target_net)
        rng = np.random.default_rng(0)
        _next(workers, source, learner, lambda: [gather_job(replay, _positions(1), cfg, source, rng)], rng)
        for proc in workers._pool._procs:  # and once they work
            os.kill(proc.pid, signal.SIGINT)
        assert len(workers.state_dict()["jobs"]) == 2
        assert all(proc.is_alive() for proc in workers._pool._procs)
    finally:
        workers.close()
