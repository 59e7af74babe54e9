"""xfer.stats against values computed here independently: IQM by hand, P(X > Y) by a double loop, the
stratified bootstrap by a plain numpy re-implementation with the same seed."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("rliable")

from xfer.errors import XferError  # noqa: E402
from xfer.stats import (  # noqa: E402
    aggregate,
    as_scores,
    difference_interval,
    interval,
    performance_profile,
    probability_of_improvement,
)

EIGHT = [50.0, 0.0, 9.0, 1.0, 6.0, 3.0, 10.0, 4.0]  # sorted: 0 1 | 3 4 6 9 | 10 50


def test_iqm_mean_median_of_eight_values_by_hand() -> None:
    scores = as_scores(EIGHT)
    assert scores.shape == (8, 1)
    assert float(aggregate(scores, "iqm")) == pytest.approx((3 + 4 + 6 + 9) / 4)  # 2 dropped at each end
    assert float(aggregate(scores, "median")) == pytest.approx((4 + 6) / 2)
    assert float(aggregate(scores, "mean")) == pytest.approx(83 / 8)
    # two tasks: the IQM pools runs x tasks; the mean averages the per-task means
    two = np.array(EIGHT).reshape(4, 2)
    assert float(aggregate(two, "iqm")) == pytest.approx(5.5)
    assert float(aggregate(two, "mean")) == pytest.approx((two[:, 0].mean() + two[:, 1].mean()) / 2)


def test_iqm_and_mean_equal_rliables_for_every_size() -> None:
    from rliable import metrics

    rng = np.random.default_rng(5)
    for runs in range(1, 14):
        for tasks in (1, 3):
            scores = rng.normal(size=(runs, tasks))
            assert float(aggregate(scores, "iqm")) == pytest.approx(metrics.aggregate_iqm(scores))
            assert float(aggregate(scores, "mean")) == pytest.approx(metrics.aggregate_mean(scores))


def test_curve_statistics_are_the_statistic_at_each_point() -> None:
    rng = np.random.default_rng(0)
    curves = rng.normal(size=(7, 2, 5))
    for stat in ("mean", "iqm", "median"):
        per_point = aggregate(curves, stat)
        assert per_point.shape == (5,)
        assert np.allclose(per_point, [aggregate(curves[..., i], stat) for i in range(5)])


def test_probability_of_improvement_equals_a_double_loop_with_ties_as_half() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, size=(5, 3)).astype(float)  # small integers: many ties
    y = rng.integers(0, 4, size=(4, 3)).astype(float)
    by_task = []
    for task in range(3):
        wins = 0.0
        for a in x[:, task]:
            for b in y[:, task]:
                wins += 1.0 if a > b else 0.5 if a == b else 0.0
        by_task.append(wins / (5 * 4))
    assert probability_of_improvement(x, y) == pytest.approx(np.mean(by_task))
    assert probability_of_improvement(x, y) + probability_of_improvement(y, x) == pytest.approx(1.0)
    assert probability_of_improvement(x + 10, x) == 1.0


def _numpy_stratified(scores: list[np.ndarray], fn, reps: int, seed: int) -> tuple[float, float]:
    """Plain stratified bootstrap: each group's runs redrawn with replacement within each task column."""
    np.random.seed(seed)
    estimates = []
    for _ in range(reps):
        drawn = []
        for s in scores:
            rows = np.random.choice(s.shape[0], s.shape, replace=True)
            drawn.append(s[rows, np.arange(s.shape[1])[None, :]])
        estimates.append(fn(*drawn))
    low, high = np.percentile(estimates, [2.5, 97.5])
    return float(low), float(high)


def test_bootstrap_interval_equals_a_numpy_stratified_bootstrap_with_the_same_seed() -> None:
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(6, 3)) * [1.0, 10.0, 100.0]
    low, high = interval(scores, "iqm", reps=300, seed=7)
    expected = _numpy_stratified([scores], lambda s: aggregate(s, "iqm"), 300, 7)
    assert (float(low), float(high)) == pytest.approx(expected)
    assert low < aggregate(scores, "iqm") < high

    other = rng.normal(size=(4, 3)) * [1.0, 10.0, 100.0] + 5
    got = difference_interval(scores, other, "iqm", reps=300, seed=3)
    expected = _numpy_stratified([scores, other], lambda a, b: aggregate(a, "iqm") - aggregate(b, "iqm"),
                                 300, 3)
    assert got == pytest.approx(expected)


def test_resampling_is_within_tasks_and_leaves_the_global_random_state_alone() -> None:
    # every task's runs agree, tasks differ: a stratified bootstrap of the mean cannot move; one that mixed
    # tasks would
    scores = np.array([[0.0, 100.0]] * 5)
    low, high = interval(scores, "mean", reps=200, seed=0)
    assert float(low) == float(high) == 50.0
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    interval(np.arange(10.0)[:, None], "median", reps=100, seed=5)
    assert np.random.random() == before


def test_interval_covers_the_true_iqm_of_a_known_distribution_most_of_the_time() -> None:
    """95 % intervals from 10 normal seeds contain the population IQM (= its mean, 0) in ~95 % of trials."""
    rng = np.random.default_rng(4)
    hits = 0
    for trial in range(40):
        low, high = interval(rng.normal(size=(10, 1)), "iqm", reps=300, seed=trial)
        hits += bool(low <= 0.0 <= high)
    assert 30 <= hits <= 40  # binomial(40, ~0.9-0.95): below 30 would mean the intervals are wrong


def test_performance_profile_is_the_fraction_above_each_threshold() -> None:
    scores = as_scores(EIGHT)
    profile = performance_profile(scores, np.array([-1.0, 3.0, 9.0, 50.0]))
    assert np.allclose(profile, [1.0, 5 / 8, 2 / 8, 0.0])


def test_without_rliable_one_line_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rliable", None)
    with pytest.raises(XferError, match="rliable") as info:
        interval(as_scores([1.0, 2.0]), "iqm")
    assert info.value.hint == 'pip install "xfer[plot]"'
    with pytest.raises(XferError, match="rliable"):
        probability_of_improvement(as_scores([1.0]), as_scores([2.0]))
    assert float(aggregate(as_scores([1.0, 2.0]), "mean")) == 1.5  # the default table needs no extra
