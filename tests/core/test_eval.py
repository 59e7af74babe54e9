"""`xfer eval` on a run directory: returns, success rate, a video file; clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import pytest
from rich.console import Console

from xfer.errors import XferError
from xfer.run import evaluate as evaluate_module
from xfer.testing import fake_registry, smoke_run


def test_eval_reports_returns_and_writes_video(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rundir = smoke_run("fake-linear", {"steps": 20}, tmp_path)
    monkeypatch.setattr("xfer.plugins.get_registry", fake_registry)
    video = tmp_path / "eval.mp4"
    result = evaluate_module.evaluate_run(rundir, episodes=3, video=video, explore=False, seed=5,
                                          device="cpu", console=Console(quiet=True))
    assert result["eval/episodes"] == 3.0
    assert result["eval/return"] < 0 and result["eval/return_std"] >= 0  # minus distances
    assert 0.0 <= result["eval/success"] <= 1.0
    frames = imageio.mimread(video)
    assert len(frames) == 11 and frames[0].shape[0] >= 64  # 10 steps + the last frame, upscaled

    again = evaluate_module.evaluate_run(rundir, episodes=3, video=None, explore=False, seed=5,
                                         device="cpu", console=Console(quiet=True))
    assert again["eval/return"] == result["eval/return"], "deterministic evaluation with the same seed"


def test_eval_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(XferError, match="neither a run directory nor a checkpoint"):
        evaluate_module.evaluate_run(tmp_path, 1, None, False, 0, "cpu", Console(quiet=True))
