"""Task re-weighting (XTRA Eq. 2, Appendix B) with constructed gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xfer_plugins.xtra.task_weights import TaskWeightSchedule, cosine_similarities

TARGET = torch.tensor([1.0, 2.0, 0.0, -1.0])
ALIGNED = 3.0 * TARGET  # cos = 1
OPPOSED = -0.5 * TARGET  # cos = -1
ORTHOGONAL = torch.tensor([2.0, -1.0, 5.0, 0.0])  # cos = 0


def test_cosine_similarity_of_constructed_gradients() -> None:
    sims = cosine_similarities(TARGET, [ALIGNED, OPPOSED, ORTHOGONAL])
    np.testing.assert_allclose(sims, [1.0, -1.0, 0.0], atol=1e-12)
    assert cosine_similarities(TARGET, [torch.zeros(4)])[0] == 0.0  # a zero gradient is not aligned


def _run(schedule: TaskWeightSchedule, steps: range, grads_at) -> dict[int, np.ndarray]:
    """Drive the schedule like the finetuning loop; record the weights each step's loss uses."""
    used = {}
    for step in steps:
        if schedule.counting(step):
            schedule.observe(step, cosine_similarities(TARGET, grads_at(step)))
        used[step] = schedule.weights.copy()
    return used


def test_counters_and_weights_follow_appendix_b() -> None:
    T, N, W = 20, 5, 40
    schedule = TaskWeightSchedule(3, cycle=T, count_steps=N, threshold=0.1, warmup=W)

    def grads(step: int) -> list[torch.Tensor]:
        # task 0 always aligned; task 1 always opposed; task 2 aligned on 2 of the 5 counting steps
        third = ALIGNED if step % T in (1, 3) else ORTHOGONAL
        return [ALIGNED, OPPOSED, third]

    used = _run(schedule, range(0, 100), grads)
    for step in range(0, W + N - 1):  # warm-up, and the first counting window, keep eta = 1
        np.testing.assert_array_equal(used[step], [1.0, 1.0, 1.0])
    # the window's last step (s % T == N - 1) sets eta = count / N; it holds until the next window ends
    for step in range(W + N - 1, W + T + N - 1):
        np.testing.assert_allclose(used[step], [1.0, 0.0, 2 / N])
    assert not any(schedule.counting(s) for s in range(0, W))
    assert [s for s in range(W, W + T) if schedule.counting(s)] == list(range(W, W + N))


def test_weights_change_when_alignment_changes() -> None:
    T, N = 10, 4
    schedule = TaskWeightSchedule(2, cycle=T, count_steps=N, warmup=0)

    def grads(step: int) -> list[torch.Tensor]:
        first_cycle = step < T
        return [ALIGNED if first_cycle else OPPOSED, ORTHOGONAL if first_cycle else ALIGNED]

    used = _run(schedule, range(0, 2 * T), grads)
    np.testing.assert_allclose(used[N - 1], [1.0, 0.0])
    np.testing.assert_allclose(used[T + N - 2], [1.0, 0.0])  # old weights through the next window...
    np.testing.assert_allclose(used[T + N - 1], [0.0, 1.0])  # ...until its last counting step


def test_threshold_is_strict_and_configurable() -> None:
    schedule = TaskWeightSchedule(1, cycle=2, count_steps=1, threshold=0.1, warmup=0)
    schedule.observe(0, np.array([0.1]))
    assert schedule.weights[0] == 0.0  # Eq. 4 counts Sim > 0.1, not >=
    schedule = TaskWeightSchedule(1, cycle=2, count_steps=1, threshold=-0.5, warmup=0)
    schedule.observe(0, np.array([0.0]))
    assert schedule.weights[0] == 1.0


def test_disabled_schedule_keeps_unit_weights() -> None:
    schedule = TaskWeightSchedule(2, cycle=10, count_steps=2, warmup=0, enabled=False)
    assert not any(schedule.counting(s) for s in range(100))
    np.testing.assert_array_equal(schedule.weights, [1.0, 1.0])
    with pytest.raises(ValueError):
        schedule.observe(0, np.zeros(2))


def test_state_round_trip_mid_window() -> None:
    a = TaskWeightSchedule(2, cycle=10, count_steps=4, warmup=0)
    for step in range(2):
        a.observe(step, np.array([0.5, -0.5]))
    b = TaskWeightSchedule(2, cycle=10, count_steps=4, warmup=0)
    b.load_state_dict(a.state_dict())
    for s in (a, b):
        for step in range(2, 4):
            s.observe(step, np.array([0.5, 0.5]))
    np.testing.assert_allclose(a.weights, [1.0, 0.5])
    np.testing.assert_array_equal(a.weights, b.weights)


def test_paper_defaults() -> None:
    from xfer_plugins.xtra.config import TaskWeightSettings

    s = TaskWeightSettings()
    assert (s.cycle, s.count_steps, s.threshold, s.warmup) == (5000, 500, 0.1, 10_000)
