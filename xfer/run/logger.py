"""Metrics to ``metrics.jsonl`` (one JSON object a line) and TensorBoard, resumable without duplicates.

Every line holds ``step`` (the loop's own counter) and whatever counters the method passes
(``env_steps``, ``updates``, ...) next to the scalars. On resume the lines after the checkpoint's step are
dropped and TensorBoard purges events past it, so a resumed curve equals the uninterrupted one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


class MetricLogger:
    def __init__(self, rundir: Path, tensorboard: bool = True, resume_step: int | None = None) -> None:
        self.path = rundir / "metrics.jsonl"
        if resume_step is not None:
            truncate_after(self.path, resume_step)
        self._file = open(self.path, "a", buffering=1)  # noqa: SIM115 (closed in close())
        self._tb: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(rundir), purge_step=resume_step + 1 if resume_step else None)
        self.last: dict[str, float] = {}

    def log(self, step: int, metrics: dict[str, Any], **counters: int) -> None:
        """Write scalars for this step (non-finite values are written as null, never dropped silently)."""
        scalars = {k: _scalar(v) for k, v in metrics.items()}
        self.last.update({k: v for k, v in scalars.items() if v is not None})
        self._file.write(json.dumps({"step": step, **counters, **scalars}) + "\n")
        if self._tb is not None:
            x = counters.get("env_steps", step)
            for key, value in scalars.items():
                if value is not None:
                    self._tb.add_scalar(key, value, x)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        if self._tb is not None:
            self._tb.add_image(tag, image, step, dataformats="HWC")

    def video(self, tag: str, frames: np.ndarray, step: int, fps: int = 16) -> None:
        """``frames`` is uint8 [T, H, W, C]. TensorBoard videos need moviepy; without it the mp4 written
        into the run directory is the record, and nothing is printed."""
        import importlib.util

        if self._tb is not None and importlib.util.find_spec("moviepy") is not None:
            import torch

            tensor = torch.from_numpy(frames).permute(0, 3, 1, 2)[None]
            self._tb.add_video(tag, tensor, step, fps=fps)

    def flush(self) -> None:
        self._file.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        self.flush()
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _scalar(value: Any) -> float | None:
    value = float(value.item() if hasattr(value, "item") else value)
    return value if math.isfinite(value) else None


def truncate_after(path: Path, step: int) -> None:
    """Keep only the lines with ``step <= step`` (used when resuming from a checkpoint at ``step``)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    tmp.replace(path)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All lines of a ``metrics.jsonl`` (a half-written last line, from a crash, is ignored)."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
