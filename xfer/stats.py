"""The statistics xfer reports over seeds and tasks, after Agarwal et al., "Deep RL at the Edge of the
Statistical Precipice" (NeurIPS 2021), computed with their library ``rliable`` (the ``plot`` extra).

Scores are arrays ``[runs, tasks]`` (or ``[runs, tasks, points]`` for a curve: one statistic per point):

- ``iqm``: the interquartile mean of all runs × tasks pooled, the 25 % trimmed mean that drops
  ``floor(0.25·N)`` scores at each end: rliable's ``aggregate_iqm`` (scipy's ``trim_mean``), in numpy.
- ``mean``: the mean over runs of each task, averaged over tasks (rliable's ``aggregate_mean``).
- ``median``: the median of all runs × tasks pooled, like the IQM (rliable's ``aggregate_median`` takes the
  median of the per-task means instead, which for a single task would be the mean).
- 95 % confidence intervals: percentile intervals of the **stratified bootstrap**: each resample draws the
  runs of every task with replacement, within that task (rliable's ``StratifiedBootstrap``); a difference
  between two groups resamples both groups independently (``StratifiedIndependentBootstrap``).
- probability of improvement ``P(X > Y)``: for each task the Mann–Whitney U statistic over all run pairs
  divided by ``n_X·n_Y`` (a tie counts 0.5), averaged over tasks (rliable's
  ``probability_of_improvement``).
- performance profile: the fraction of runs × tasks whose score exceeds each threshold ``tau``.

rliable draws its resampling indices from numpy's global random state; :func:`_seeded` sets that state from
an explicit seed for the call and restores it afterwards, so every interval is reproducible.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Literal

import numpy as np

from xfer.errors import MissingDependency, XferError

Stat = Literal["mean", "iqm", "median"]
STATS: tuple[str, ...] = ("mean", "iqm", "median")
CONFIDENCE = 0.95
DEFAULT_REPS = 2000


def _rliable() -> tuple[ModuleType, ModuleType]:
    try:
        from rliable import library, metrics
    except ImportError:
        raise MissingDependency("confidence intervals and IQM", "rliable", "plot") from None
    return library, metrics


def check_stat(stat: str) -> Stat:
    if stat not in STATS:
        raise XferError(f"unknown statistic {stat!r}", hint="use --stat " + ", --stat ".join(STATS))
    return stat  # type: ignore[return-value]


def as_scores(values: np.ndarray | list[float]) -> np.ndarray:
    """A flat list of per-seed values as the ``[runs, 1 task]`` matrix rliable expects."""
    scores = np.asarray(values, dtype=float)
    return scores[:, None] if scores.ndim == 1 else scores


def aggregate(scores: np.ndarray, stat: Stat) -> np.ndarray:
    """The statistic of ``[runs, tasks]`` scores (a 0-d array), or per point of ``[runs, tasks, points]``.

    Plain numpy, equal to rliable's ``aggregate_mean`` and ``aggregate_iqm`` (scipy's ``trim_mean`` at
    0.25; tested): scipy's wrapper costs about a millisecond a call, six times the rest of a bootstrap
    resample, and the default ``xfer table`` then needs no extra."""
    if stat == "mean":
        return np.asarray(scores.mean(axis=0).mean(axis=0))
    pooled = np.sort(scores.reshape(scores.shape[0] * scores.shape[1], -1), axis=0)
    if stat == "median":
        value = np.median(pooled, axis=0)
    else:
        cut = int(0.25 * len(pooled))
        value = pooled[cut:len(pooled) - cut].mean(axis=0)
    return value if scores.ndim > 2 else value.reshape(())


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _vector(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    return lambda *scores: np.atleast_1d(fn(*scores))


def interval(scores: np.ndarray, stat: Stat, reps: int = DEFAULT_REPS, seed: int = 0
             ) -> tuple[np.ndarray, np.ndarray]:
    """95 % stratified-bootstrap percentile interval ``(low, high)`` of ``aggregate(scores, stat)``."""
    library, _ = _rliable()
    with _seeded(seed):
        bootstrap = library.StratifiedBootstrap(scores)
        low, high = bootstrap.conf_int(_vector(lambda s: aggregate(s, stat)), reps=reps, size=CONFIDENCE,
                                       method="percentile")
    return _shaped(low, scores), _shaped(high, scores)


def difference_interval(x: np.ndarray, y: np.ndarray, stat: Stat, reps: int = DEFAULT_REPS, seed: int = 0
                        ) -> tuple[float, float]:
    """95 % interval of ``aggregate(x) - aggregate(y)``, each group resampled within tasks, independently."""
    library, _ = _rliable()
    with _seeded(seed):
        bootstrap = library.StratifiedIndependentBootstrap(x, y)
        (low,), (high,) = bootstrap.conf_int(_vector(lambda a, b: aggregate(a, stat) - aggregate(b, stat)),
                                             reps=reps, size=CONFIDENCE, method="percentile")
    return float(low), float(high)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """``P(X > Y)`` for scores ``[runs_x, tasks]`` and ``[runs_y, tasks]`` (ties 0.5), averaged over tasks."""
    _, metrics = _rliable()
    return float(metrics.probability_of_improvement(x, y))


def performance_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of all runs × tasks with a score above each ``tau`` (rliable's score distribution)."""
    library, _ = _rliable()
    return np.asarray(library.score_distributions(scores, np.asarray(taus, dtype=float)))


def _shaped(bound: np.ndarray, scores: np.ndarray) -> np.ndarray:
    return np.asarray(bound) if scores.ndim > 2 else np.asarray(bound).reshape(())
