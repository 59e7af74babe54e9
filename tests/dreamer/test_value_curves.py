"""Fig. 5(b)'s diagnostic: per-step value estimates along an evaluation episode against the true discounted
returns-to-go, their running sums, and the summary metrics, by hand."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from xfer.dreamer.value_curves import discounted_returns, episode_curves, value_metrics, write_curves


def test_discounted_returns_by_hand() -> None:
    assert discounted_returns([0.0, 1.0, 0.0, 2.0], 0.5).tolist() == pytest.approx([0.75, 1.5, 1.0, 2.0])


def test_episode_curves_and_cumulative_metrics_by_hand(tmp_path: Path) -> None:
    probe = SimpleNamespace(target_values=[[1.0, 2.0, 3.0], [4.0]], source_values=[[0.5, 0.5, 0.5], [1.0]])
    rewards = [[1.0, 0.0, 2.0], [3.0]]  # r_t arrives with observation t + 1
    curves = episode_curves(probe, rewards, gamma=0.5)  # type: ignore[arg-type]
    first, second = curves
    # G_t of [0, 1, 0, 2] with γ = 0.5, for the three states acted from: [0.75, 1.5, 1.0]
    assert first["true_return"] == pytest.approx([0.75, 1.5, 1.0])
    assert first["reward"] == [0.0, 1.0, 0.0]
    assert first["cumulative_value"] == pytest.approx([1.0, 3.0, 6.0])
    assert first["cumulative_true_return"] == pytest.approx([0.75, 2.25, 3.25])
    assert second["true_return"] == pytest.approx([1.5]) and second["cumulative_value"] == [4.0]
    metrics = value_metrics(curves)
    assert metrics["value/estimate"] == pytest.approx(2.5)
    assert metrics["value/true_return"] == pytest.approx((0.75 + 1.5 + 1.0 + 1.5) / 4)
    assert metrics["value/bias"] == pytest.approx(2.5 - 4.75 / 4)
    assert metrics["value/cumulative"] == pytest.approx((6.0 + 4.0) / 2)
    assert metrics["value/cumulative_true_return"] == pytest.approx((3.25 + 1.5) / 2)
    assert metrics["value/cumulative_source"] == pytest.approx((1.5 + 1.0) / 2)
    assert metrics["value/estimate_start"] == pytest.approx(2.5)
    path = tmp_path / "value_curves" / "eval_000000010.json"
    write_curves(path, {"step": 10, "episodes": curves})
    saved = json.loads(path.read_text())["episodes"][0]
    assert saved["cumulative_true_return"] == pytest.approx([0.75, 2.25, 3.25])


def test_without_a_source_critic_there_is_no_source_curve() -> None:
    probe = SimpleNamespace(target_values=[[1.0, 1.0]], source_values=[[]])
    curves = episode_curves(probe, [[1.0, 1.0]], gamma=1.0)  # type: ignore[arg-type]
    assert curves[0]["source_value"] == [] and curves[0]["true_return"] == pytest.approx([2.0, 2.0])
    assert "value/cumulative_source" not in value_metrics(curves)
