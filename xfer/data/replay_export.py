"""Turn a training run's replay buffer into an offline dataset: CoWorld's "medium-replay" / "medium-expert".

CoWorld (METHODS.md) defines "medium-replay" as the whole replay buffer of a DreamerV2 agent trained until
it reaches 1/3 of its best score, and "medium-expert" as the buffer until it reaches its best score. Given a
finished run, the stopping point is read off its ``metrics.jsonl``: the first line whose ``eval/return``
reaches the threshold (``--until-return X``, or ``--fraction F`` of the best ``eval/return`` in the file)
gives the environment step ``env_steps`` at which training would have stopped, and the replay episodes
collected up to that step are kept.

Assumptions, stated because the replay does not record time stamps:

* replay episode files are indexed in collection order (:class:`~xfer.data.replay.ReplayBuffer` assigns the
  next index when an episode finishes), so the environment step at which episode ``k`` ended is the sum of
  the lengths of episodes ``0..k``, times ``steps_per_transition``: by default the run's action repeat
  (its ``recipe.yaml``, else the suite's default), since xfer runs count ``env_steps`` in simulator steps;
  1 for a run directory without a recipe;
* an episode is kept when it ended at or before the stopping step (episodes cut by the stop are dropped);
* the replay does not say whether actions were discrete: actions that are one-hot on every step of the first
  episode are taken to be discrete (one-hot encoded), anything else continuous.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from xfer.data.dataset import copy_episode, finalize_dataset, require_empty_output
from xfer.data.episode import episode_files, load_episode, looks_one_hot, parse_filename
from xfer.errors import XferError

RETURN_KEY = "eval/return"


def read_eval_curve(metrics_path: Path) -> list[tuple[int, float]]:
    """``(env_steps, eval/return)`` pairs of a run's ``metrics.jsonl`` (a half-written line is skipped)."""
    if not metrics_path.is_file():
        raise XferError(f"run metrics {metrics_path} do not exist")
    curve = []
    for line in metrics_path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and row.get(RETURN_KEY) is not None:
            curve.append((int(row.get("env_steps", row.get("step", 0))), float(row[RETURN_KEY])))
    return curve


def stop_step(curve: list[tuple[int, float]], until_return: float | None, fraction: float | None,
              source: str) -> tuple[int | None, float | None]:
    """The env step at which ``eval/return`` first reached the threshold, and the threshold."""
    if until_return is not None and fraction is not None:
        raise XferError("give either --until-return or --fraction, not both")
    if until_return is None and fraction is None:
        return None, None
    if not curve:
        raise XferError(f"{source} has no '{RETURN_KEY}' lines to find the stopping point in")
    threshold = until_return if until_return is not None else fraction * max(r for _, r in curve)  # type: ignore[operator]
    for steps, value in curve:
        if value >= threshold:
            return steps, threshold
    best = max(r for _, r in curve)
    raise XferError(f"{source}: '{RETURN_KEY}' never reached {threshold:g} (best {best:g})",
                    hint="lower --until-return")


def ended_by(lengths: list[int], stop: int | None, what: str, unit: str) -> int:
    """How many of the items (episodes, games) in collection order had ended by step ``stop`` (all when it
    is None), counting each one's end as the sum of the lengths up to it; none is one :class:`XferError`."""
    if stop is None:
        count = len(lengths)
    else:
        ends = np.cumsum(lengths)
        count = int(np.searchsorted(ends, stop, side="right"))
    if count == 0:
        raise XferError(f"no {what} ended by {unit} {stop}",
                        hint="the run stopped too early for this threshold")
    return count


def run_action_repeat(rundir: Path) -> int:
    """The action repeat the run acted with: its recipe's ``env.action_repeat``, else its suite's default
    (1 when the run has no recipe or its suite is not installed)."""
    suite, _, _, env = run_target(rundir)
    if env and env.get("action_repeat"):
        return int(env["action_repeat"])
    from xfer.plugins import get_registry

    registry = get_registry()
    if suite in registry.suites:
        return int(registry.suites[suite].defaults.get("action_repeat") or 1)
    return 1


def export_replay(rundir: Path, out: Path, until_return: float | None = None, fraction: float | None = None,
                  replay: str = "replay", steps_per_transition: int | None = None) -> dict[str, Any]:
    """Copy the run's replay episodes up to the stopping point into the new dataset ``out``; return its
    manifest. ``steps_per_transition`` None: the run's action repeat (:func:`run_action_repeat`)."""
    rundir, out = Path(rundir), Path(out)
    if steps_per_transition is None:
        steps_per_transition = run_action_repeat(rundir)
    replay_dir = rundir / replay
    if not replay_dir.is_dir():
        raise XferError(f"run {rundir} has no replay directory {replay_dir}")
    require_empty_output(out)
    stop, threshold = stop_step(read_eval_curve(rundir / "metrics.jsonl"), until_return, fraction,
                                str(rundir / "metrics.jsonl"))
    files = episode_files(replay_dir)
    lengths = [parse_filename(path)[1] * steps_per_transition for path in files]  # type: ignore[index]
    kept = files[:ended_by(lengths, stop, f"replay episode of {rundir}", "env step")]
    for index, path in enumerate(kept):
        copy_episode(path, out, index)
    suite, task, seed, env = run_target(rundir)
    discrete = looks_one_hot(load_episode(kept[0], keys=["action"])["action"][1:])
    return finalize_dataset(
        out, suite=suite, task=task, policy=f"replay:{rundir}", seed=seed, env=env, discrete=discrete,
        source="replay", replay={"run": str(rundir), "until_env_step": stop, "threshold": threshold,
                                 "fraction": fraction, "episodes_in_run": len(files),
                                 "steps_per_transition": steps_per_transition})


def run_target(rundir: Path) -> tuple[Any, Any, Any, Any]:
    """Suite, task, seed and env section of the run's target task, read from its ``recipe.yaml``."""
    path = rundir / "recipe.yaml"
    data = yaml.safe_load(path.read_text()) if path.is_file() else {}
    data = data if isinstance(data, dict) else {}
    target = data.get("target") or {}
    env = {**(data.get("env") or {}), **(target.get("env") or {})}
    return target.get("suite"), target.get("task"), data.get("seed"), env or None
