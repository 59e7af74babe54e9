"""Metrics to ``metrics.jsonl`` (one JSON object a line) and TensorBoard, resumable without duplicates.

The x-axes, one per metric family (README, "Runs, checkpoints and resume"):

- ``metrics.jsonl``: every line holds ``step``, the run's own monotonic step (checkpoint names,
  ``--stop-after`` and resume use it), plus whatever counters the method passes (``env_steps``,
  ``updates``, ...) next to the scalars; ``xfer plot --x`` picks any of them;
- TensorBoard scalars: ``env_steps`` for lines that carry it (what acts in an environment: training
  episodes, evaluation, throughput), else the line's ``step`` (update-only stages: offline training,
  Vid2Act's Stage 1); images and videos at the step the method passes (the evaluation's environment step).

On resume the lines after the checkpoint's step are dropped from ``metrics.jsonl``, and each TensorBoard
event file is cut back to the length it had when the checkpoint was written (files begun after it are
removed), so neither holds a point twice whichever axis it uses, and a resumed curve equals the
uninterrupted one. (Checkpoints written before xfer recorded event-file lengths fall back to TensorBoard's
``purge_step`` on the checkpoint's step.)
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from xfer.run.storage import WriteFailed, writing

EVENTS = "events.out.tfevents.*"


class MetricLogger:
    def __init__(self, rundir: Path, tensorboard: bool = True, resume_step: int | None = None,
                 tensorboard_lengths: dict[str, int] | None = None) -> None:
        self.rundir = rundir
        self.path = rundir / "metrics.jsonl"
        if resume_step is not None:
            truncate_after(self.path, resume_step)
        purge = None
        if resume_step is not None and tensorboard_lengths is not None:
            cut_events(rundir, tensorboard_lengths)
        elif resume_step:
            purge = resume_step + 1
        with writing(self.path):
            self._file = open(self.path, "a", buffering=1)  # noqa: SIM115 (closed in close())
        self._tb: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            with writing(f"TensorBoard events in {rundir}"):
                self._tb = SummaryWriter(str(rundir), purge_step=purge)
        self.last: dict[str, float] = {}

    def log(self, step: int, metrics: dict[str, Any], **counters: int) -> None:
        """Write scalars for this step (non-finite values are written as null, never dropped silently)."""
        scalars = {k: _scalar(v) for k, v in metrics.items()}
        self.last.update({k: v for k, v in scalars.items() if v is not None})
        with writing(self.path):
            self._file.write(json.dumps({"step": step, **counters, **scalars}) + "\n")
        if self._tb is not None:
            x = counters.get("env_steps", step)
            with writing(f"TensorBoard events in {self.rundir}"):
                for key, value in scalars.items():
                    if value is not None:
                        self._tb.add_scalar(key, value, x)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        if self._tb is not None:
            with writing(f"TensorBoard events in {self.rundir}"):
                self._tb.add_image(tag, image, step, dataformats="HWC")

    def video(self, tag: str, frames: np.ndarray, step: int, fps: int = 16) -> None:
        """``frames`` is uint8 [T, H, W, C]. TensorBoard videos need moviepy; without it the mp4 written
        into the run directory is the record, and nothing is printed."""
        import importlib.util

        if self._tb is not None and importlib.util.find_spec("moviepy") is not None:
            import torch

            tensor = torch.from_numpy(frames).permute(0, 3, 1, 2)[None]
            with writing(f"TensorBoard events in {self.rundir}"):
                self._tb.add_video(tag, tensor, step, fps=fps)

    def flush(self) -> None:
        with writing(self.path):
            self._file.flush()
        if self._tb is not None:
            with writing(f"TensorBoard events in {self.rundir}"):
                self._tb.flush()

    def tensorboard_lengths(self) -> dict[str, int] | None:
        """Every event file's length now (call after :meth:`flush`), recorded in each checkpoint."""
        if self._tb is None:
            return None
        return {p.name: p.stat().st_size for p in self.rundir.glob(EVENTS)}

    def close(self) -> None:
        """Close both writers, even when one fails; the first failure is raised after both are closed."""
        failure: WriteFailed | None = None
        for name, close in (("metrics", self._file.close),
                            ("tensorboard", self._tb.close if self._tb is not None else None)):
            if close is None:
                continue
            try:
                with writing(self.path if name == "metrics" else f"TensorBoard events in {self.rundir}"):
                    close()
            except WriteFailed as err:
                failure = failure or err
        if failure is not None:
            raise failure


def _scalar(value: Any) -> float | None:
    value = float(value.item() if hasattr(value, "item") else value)
    return value if math.isfinite(value) else None


def truncate_after(path: Path, step: int) -> None:
    """Keep only the lines with ``step <= step`` (used when resuming from a checkpoint at ``step``); a line
    a crash or a full disk cut off is dropped."""
    if not path.exists():
        return
    kept = [json.dumps(row) for row in read_metrics(path) if row.get("step", step + 1) <= step]
    tmp = path.with_name(path.name + ".tmp")
    try:
        with writing(path):
            tmp.write_text("".join(line + "\n" for line in kept))
            tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def cut_events(rundir: Path, lengths: dict[str, int]) -> None:
    """Cut each TensorBoard event file back to its recorded length; remove those begun after the record."""
    for path in rundir.glob(EVENTS):
        with writing(path):
            if path.name not in lengths:
                path.unlink()
            elif path.stat().st_size > lengths[path.name]:
                os.truncate(path, lengths[path.name])


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All lines of a ``metrics.jsonl`` (a half-written last line, from a crash, or a line with bytes that
    are not UTF-8 text is ignored)."""
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
