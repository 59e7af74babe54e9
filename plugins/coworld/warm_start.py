"""A source's warm-up taken from a finished DreamerV2 run (``coworld.source_init_from``).

Algorithm 1 line 3 warms every source up with plain DreamerV2 before co-training; the "DV2 Finetune"
baseline pretrains the same DreamerV2 on the source (Appendix D: "CoWorld trains as long as DV2 Finetune").
A ``dreamer`` run on the source task *is* that warm-up, so CoWorld can start from it: the source agent gets
the run's world model, actor and critics (optimisers start fresh, as when finetuning) and the source replay
starts with the run's episodes (hard links into this run's ``replay/<source>``, copies where links fail).
Both methods then start from one pretraining, and its compute is spent once.

Only a fresh run reads the other run: a resumed CoWorld run restores its own checkpoint and replay.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from xfer.data.episode import episode_files
from xfer.dreamer.agent import DreamerAgent
from xfer.dreamer.loading import learner_state
from xfer.errors import XferError
from xfer.recipe import TaskSpec
from xfer.recipe_io import load_run_recipe
from xfer.run.checkpoint import load_run_checkpoint
from xfer.run.context import RunContext


def check_source_run(ctx: RunContext, rundir: Path, task: TaskSpec) -> None:
    """Refuse a run of another task or with other observation/acting settings than ``task`` has here."""
    if not (rundir / "recipe.yaml").is_file():
        raise XferError(f"coworld.source_init_from: {str(rundir)!r} is not a run directory (no recipe.yaml)",
                        hint="name the directory of a finished dreamer run on the source task")
    other = load_run_recipe(rundir, ctx.registry)
    if other.target is None or (other.target.suite, other.target.task) != (task.suite, task.task):
        found = "no target" if other.target is None else f"{other.target.suite}/{other.target.task}"
        raise XferError(f"coworld.source_init_from: {str(rundir)!r} was trained on {found}, the source here "
                        f"is {task.suite}/{task.task}", hint="give one run per source, in the order of "
                        "`sources:`")
    defaults = ctx.registry.suite(task.suite).defaults
    mine, theirs = ctx.env_settings(task).resolve(defaults), other.env_for(other.target).resolve(defaults)
    for key in ("action_repeat", "image_size", "time_limit"):
        if getattr(mine, key) != getattr(theirs, key):
            raise XferError(f"coworld.source_init_from: {str(rundir)!r} ran with env.{key} "
                            f"{getattr(theirs, key)}, this recipe's source has {getattr(mine, key)}",
                            hint=f"set env.{key}: {getattr(theirs, key)} or train a source run with this "
                                 "recipe's settings")


def link_replay(rundir: Path, directory: Path) -> int:
    """Put the episode files of ``rundir/replay`` into the empty ``directory``; returns their number."""
    files = episode_files(rundir / "replay") if (rundir / "replay").is_dir() else []
    if not files:
        raise XferError(f"coworld.source_init_from: {str(rundir)!r} has no replay episodes",
                        hint="the run's replay/ directory is its source data; was it deleted?")
    directory.mkdir(parents=True, exist_ok=True)
    for path in files:
        target = directory / path.name
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
    return len(files)


def load_source_weights(agent: DreamerAgent, rundir: Path) -> int:
    """Every module tensor of the run's newest checkpoint into ``agent``, which must have the same shapes;
    returns the run's environment steps."""
    checkpoint = load_run_checkpoint(rundir)
    report = agent.load_matching(learner_state(checkpoint, rundir))
    if report.skipped or report.new:
        first = (f"{report.skipped[0][0]}: {report.skipped[0][1]} there, {report.skipped[0][2]} here"
                 if report.skipped else f"{report.new[0]} missing there")
        raise XferError(f"coworld.source_init_from: the agent of {str(rundir)!r} does not fit this source "
                        f"agent ({report.summary()}; {first})",
                        hint="train the source run with coworld.model's sizes and the same action size")
    return int(checkpoint.get("step", 0))


def warm_start(ctx: RunContext, runs: list[Path], tasks: list[TaskSpec], agents: list[DreamerAgent],
               names: list[str]) -> None:
    """Start each source from its run (fresh runs only; see the module docstring)."""
    if len(runs) != len(tasks):
        raise XferError(f"coworld.source_init_from names {len(runs)} run(s) for {len(tasks)} source(s)",
                        hint="give one run directory per entry of `sources:`, in the same order")
    for rundir, task in zip(runs, tasks, strict=True):
        check_source_run(ctx, rundir, task)
    if ctx.restore() is not None:
        return
    for rundir, agent, name in zip(runs, agents, names, strict=True):
        steps = load_source_weights(agent, rundir)
        episodes = link_replay(rundir, ctx.rundir / "replay" / name)
        ctx.say(f"coworld: source {name} warmed up by {rundir} ({steps} environment steps, {episodes} "
                "episodes)")
