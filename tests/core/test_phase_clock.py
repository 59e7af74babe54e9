"""The loops' phase clock: cumulative seconds per phase, logged as perf/<phase>_s, restored on resume."""

from __future__ import annotations

import pytest

from xfer.run.phase_clock import PhaseClock


def test_phase_clock_adds_each_block_to_its_phase_and_survives_a_round_trip() -> None:
    ticks = iter([0.0, 1.5, 10.0, 10.25, 20.0, 22.0])
    clock = PhaseClock(clock=lambda: next(ticks))
    with clock.phase("train"):
        pass
    with clock.phase("eval"):
        pass
    with pytest.raises(RuntimeError), clock.phase("train"):  # time up to an exception still counts
        raise RuntimeError
    assert clock.metrics() == {"perf/eval_s": 0.25, "perf/train_s": 3.5}
    restored = PhaseClock()
    restored.load_state_dict(clock.state_dict())
    assert restored.metrics() == clock.metrics()
