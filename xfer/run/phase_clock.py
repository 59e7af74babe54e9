"""Wall seconds spent in each phase of a training loop (self-play, updates, evaluation, ...), cumulative over
the run and kept across ``xfer resume`` (its state goes into the loop's checkpoint). Logged as
``perf/<phase>_s`` so a run's metrics say where its time went."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class PhaseClock:
    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self._now = clock or time.perf_counter

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the wall time of the ``with`` block to ``name``."""
        start = self._now()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + self._now() - start

    def metrics(self) -> dict[str, float]:
        return {f"perf/{name}_s": value for name, value in sorted(self.seconds.items())}

    def state_dict(self) -> dict[str, float]:
        return dict(self.seconds)

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.seconds = {str(name): float(value) for name, value in state.items()}
