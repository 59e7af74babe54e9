"""The ``xfer`` command line: a thin typer app; each command delegates to a module.

Heavy modules (torch, simulators) are imported inside the commands that need them, so ``xfer
list-plugins`` and ``xfer validate`` answer in about a second.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from xfer.errors import XferError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="xfer: transfer reinforcement learning with world models.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

SetOption = Annotated[list[str] | None, typer.Option(
    "--set", help="override a recipe key: --set key.path=value (value parsed as YAML); repeatable")]


@app.command("list-plugins")
def list_plugins(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
    tasks: Annotated[str | None, typer.Option("--tasks", help="list the tasks of this suite")] = None,
) -> None:
    """Methods and environment suites from installed plugins, with their versions and status."""
    from xfer.plugin_table import plugin_rows, plugins_table, tasks_table
    from xfer.plugins import get_loaded

    loaded = get_loaded()
    if tasks is not None:
        out.print(tasks_table(loaded.registry.suite(tasks)))
        return
    if as_json:
        print(json.dumps(plugin_rows(loaded), indent=2))
        return
    out.print(plugins_table(loaded))


@app.command()
def validate(recipe: Path, set_: SetOption = None) -> None:
    """Check a recipe (after --set overrides) and print the resolved recipe."""
    from xfer.plugins import get_registry
    from xfer.recipe_io import dump_recipe, load_recipe

    resolved = load_recipe(recipe, get_registry(), set_ or [])
    out.print(dump_recipe(resolved), highlight=False, markup=False)
    err.print(f"[green]ok[/green]: {escape(str(recipe))} is a valid {escape(resolved.method)} recipe")


@app.command()
def run(
    recipe: Path,
    set_: SetOption = None,
    stop_after: Annotated[int | None, typer.Option(
        help="stop with a checkpoint once the loop reaches this step (resume later)")] = None,
    rundir: Annotated[Path | None, typer.Option(help="explicit new run directory")] = None,
    nproc: Annotated[int, typer.Option(help="data-parallel processes (one per GPU); batch is global")] = 1,
) -> None:
    """Run a recipe in a new run directory (runs/NAME/TIMESTAMP).

    Exit codes: 0 finished; 2 an error, said in one line (a bad recipe, a full disk, a run directory in use);
    3 stopped with a checkpoint by Ctrl-C, SIGTERM or --stop-after (continue with `xfer resume RUNDIR`);
    130 aborted by a second Ctrl-C, without a checkpoint.
    """
    from xfer.run.runner import start_run

    if nproc > 1 or os.environ.get("WORLD_SIZE", "1") != "1":
        from xfer.run.distributed import start

        rundir = start(recipe, set_ or [], rundir, stop_after, nproc, resume=False)
        if rundir is None:
            return
    else:
        rundir = start_run(recipe, set_ or [], stop_at=stop_after, console=err, rundir=rundir)
    out.print(f"run directory: {rundir}", highlight=False, markup=False)
    _exit_if_stopped(rundir)


def _exit_if_stopped(rundir: Path) -> None:
    import signal

    from xfer.run.runner import EXIT_STOPPED, run_status

    for sig in (signal.SIGINT, signal.SIGTERM):  # the outcome is on disk: a Ctrl-C while exiting changes
        signal.signal(sig, signal.SIG_IGN)       # nothing (it killed the exit with SIGINT, not code 3 or 0)
    if run_status(rundir).get("status") == "stopped":
        raise typer.Exit(EXIT_STOPPED)


@app.command()
def resume(
    rundir: Path,
    stop_after: Annotated[int | None, typer.Option(help="stop again at this step")] = None,
    from_scratch: Annotated[bool, typer.Option(
        "--from-scratch", help="start over from step 0; old files go to RUNDIR/previous-<time>/")] = False,
    nproc: Annotated[int, typer.Option(help="data-parallel processes (any number)")] = 1,
) -> None:
    """Continue a run from its newest checkpoint, exactly where it stopped (a finished run is left as it is).

    Exit codes as for `xfer run`: 0 finished, 2 an error, 3 stopped with a checkpoint, 130 aborted.
    """
    from xfer.run.runner import resume_run

    if nproc > 1 or os.environ.get("WORLD_SIZE", "1") != "1":
        from xfer.run.distributed import start

        if from_scratch:
            raise XferError("--from-scratch works with one process", hint="drop --nproc for it")
        start(None, [], rundir, stop_after, nproc, resume=True)
    else:
        resume_run(rundir, stop_at=stop_after, console=err, from_scratch=from_scratch)
    out.print(f"run directory: {rundir}", highlight=False, markup=False)
    _exit_if_stopped(rundir)


@app.command("eval")
def evaluate(
    run_or_checkpoint: Path,
    episodes: Annotated[int, typer.Option(help="evaluation episodes")] = 10,
    video: Annotated[Path | None, typer.Option(help="write a video (.mp4 or .gif)")] = None,
    explore: Annotated[bool, typer.Option(help="sample actions instead of the mode")] = False,
    seed: Annotated[int, typer.Option(help="seed of the evaluation episodes")] = 10_000,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
) -> None:
    """Evaluate a run's agent on its target task: mean ± std return, success rate, optional video."""
    from xfer.run.evaluate import evaluate_run

    result = evaluate_run(run_or_checkpoint, episodes=episodes, video=video, explore=explore, seed=seed,
                          device=device, console=err)
    out.print(json.dumps(result, indent=2), markup=False)


@app.command()
def sweep(
    recipe: Annotated[Path | None, typer.Argument(help="the recipe to sweep over")] = None,
    grid: Annotated[list[str] | None, typer.Option(
        help="key.path=v1,v2,... (repeatable; the product runs)")] = None,
    set_: SetOption = None,
    backend: Annotated[str, typer.Option(help="local | ray")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray address (ray://host:port or auto)")] = None,
    gpus_per_run: Annotated[float, typer.Option(help="GPUs each run asks Ray for")] = 0.0,
    cpus_per_run: Annotated[float, typer.Option(help="CPUs each run asks Ray for")] = 1.0,
    max_parallel: Annotated[int, typer.Option(help="local backend: runs at once")] = 1,
    resume_dir: Annotated[Path | None, typer.Option("--resume", help="resume this sweep directory")] = None,
    root: Annotated[Path, typer.Option(help="where new sweep directories go")] = Path("sweeps"),
) -> None:
    """Run a grid of recipes (seeds × tasks × ...) locally or on Ray; resumable; one failure stops nothing."""
    from xfer.run.lock import RunLock
    from xfer.sweep import Sweep, create_sweep, run_local, run_ray
    from xfer.sweep_table import sweep_table

    if resume_dir is not None:
        swept = Sweep.load(resume_dir)
    elif recipe is not None:
        swept = create_sweep(recipe, grid or [], set_ or [], root)
    else:
        raise XferError("give a RECIPE (with --grid) or --resume SWEEPDIR")
    err.print(f"sweep directory: {swept.directory} ({len(swept.runs)} runs)", highlight=False, markup=False)
    if backend not in ("local", "ray"):
        raise XferError(f"unknown backend {backend!r}: use local or ray")
    with RunLock(swept.directory, kind="sweep"):
        if resume_dir is not None:
            swept = Sweep.load(resume_dir)  # read again under the lock: another sweep may have just ended
        if backend == "ray":
            run_ray(swept, address, gpus_per_run, cpus_per_run, on_change=lambda s: err.print(sweep_table(s)))
        else:
            run_local(swept, max_parallel, on_change=lambda s: None)
    out.print(sweep_table(swept))
    failed = [r for r in swept.runs if r.status == "failed"]
    if failed:
        err.print(f"{len(failed)} of {len(swept.runs)} runs failed; logs in {swept.directory / 'logs'}; "
                  f"rerun them with `xfer sweep --resume {swept.directory}`", highlight=False, markup=False)
        raise typer.Exit(1)
    stopped = [r for r in swept.runs if r.status == "stopped"]
    if stopped:
        err.print(f"{len(stopped)} of {len(swept.runs)} runs stopped with a checkpoint; continue them with "
                  f"`xfer sweep --resume {swept.directory}`", highlight=False, markup=False)
        raise typer.Exit(3)


StatOption = Annotated[str, typer.Option(
    "--stat", help="statistic over seeds: mean | iqm (interquartile mean) | median")]
RepsOption = Annotated[int, typer.Option("--reps", help="bootstrap resamples", min=100)]
BootSeedOption = Annotated[int, typer.Option("--seed", help="seed of the bootstrap resampling")]


def _warn(line: str) -> None:
    err.print(line, highlight=False, markup=False)


@app.command()
def plot(
    paths: Annotated[list[Path], typer.Argument(help="run or sweep directories")],
    metric: Annotated[str, typer.Option(
        help="metric name; * matches several (vid2act/weight/*), a,b draws both")] = "eval/return",
    x: Annotated[str, typer.Option(
        help="x axis counter logged next to the metric ('a,b': each run uses the first it logs)"
    )] = "env_steps",
    group_by: Annotated[str, typer.Option(help="recipe key that names a curve")] = "method",
    out_path: Annotated[Path, typer.Option("--out", help="PNG to write")] = Path("curves.png"),
    title: Annotated[str | None, typer.Option(help="figure title")] = None,
    stat: StatOption = "mean",
    ci: Annotated[str | None, typer.Option(help="95 % band: normal (±1.96·std/√n; the default for the "
                                           "mean) | bootstrap (stratified; the default for iqm and median) "
                                           "| none")] = None,
    reps: RepsOption = 2000,
    seed: BootSeedOption = 0,
) -> None:
    """Learning curves: a statistic over seeds (one run per seed) and its 95% band, one curve per group."""
    from xfer.plot import find_runs, plot_curves
    from xfer.run.storage import writing

    runs = find_runs(paths)
    with writing(out_path):
        written = plot_curves(runs, metric, x, group_by, out_path, title, stat=stat, ci=ci, reps=reps,
                              seed=seed, warn=_warn)
    out.print(f"wrote {written}", highlight=False, markup=False)


@app.command()
def table(
    paths: Annotated[list[Path], typer.Argument(help="run or sweep directories")],
    metric: Annotated[str, typer.Option(help="metric to tabulate")] = "eval/return",
    group_by: Annotated[str, typer.Option(help="recipe key for the columns")] = "method",
    rows: Annotated[str, typer.Option(help="recipe key for the rows")] = "target.task",
    last: Annotated[int, typer.Option(help="average each run's last K values")] = 1,
    x: Annotated[str | None, typer.Option(
        help="count the values as points against this counter, as compare does: values logged at one x are "
             "one point ('a,b': each run uses the first it logs)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="md | csv")] = "md",
    stat: StatOption = "mean",
    ci: Annotated[str, typer.Option(help="none (the mean shows ± std) | bootstrap (95 % stratified "
                                    "bootstrap interval of the statistic)")] = "none",
    reps: RepsOption = 2000,
    seed: BootSeedOption = 0,
) -> None:
    """Final performance over seeds (one run per seed; default mean ± std, the papers' tables), as
    Markdown or CSV."""
    from xfer.plot import final_table, find_runs, format_table

    if fmt not in ("md", "csv"):
        raise XferError(f"unknown format {fmt!r}: use md or csv")
    row_names, cols, cells = final_table(find_runs(paths), metric, group_by, rows, last, warn=_warn, x=x)
    print(format_table(row_names, cols, cells, fmt, rows, stat=stat, ci=ci, reps=reps, seed=seed), end="")


@app.command()
def compare(
    paths: Annotated[list[Path], typer.Argument(help="run or sweep directories (two sweeps, say)")],
    metric: Annotated[str, typer.Option(help="metric to compare")] = "eval/return",
    by: Annotated[str, typer.Option(help="recipe key that names a group")] = "method",
    rows: Annotated[str, typer.Option(help="recipe key of the tasks (bootstrap strata)")] = "target.task",
    x: Annotated[str, typer.Option(
        help="counter of the budget check and the AUC ('a,b': each run uses the first it logs)"
    )] = "env_steps",
    last: Annotated[int, typer.Option(help="final point: mean of each run's last K values", min=1)] = 1,
    reps: RepsOption = 2000,
    seed: BootSeedOption = 0,
    force: Annotated[bool, typer.Option(
        help="compare even with unequal budgets or a single seed")] = False,
    upto: Annotated[float | None, typer.Option(
        help="compare at this budget of --x: points past it are dropped (longer runs are cut)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="md | csv | json")] = "md",
) -> None:
    """Each group's IQM with its 95% stratified-bootstrap CI, and for each pair the IQM difference with its
    CI and P(X > Y), at the final point and as the normalised area under the curve."""
    from xfer.compare import compare_runs, format_report
    from xfer.plot import find_runs

    if fmt not in ("md", "csv", "json"):
        raise XferError(f"unknown format {fmt!r}: use md, csv or json")
    report = compare_runs(find_runs(paths), metric, by, rows, x, last, reps, seed, force, warn=_warn,
                          upto=upto)
    print(format_report(report, fmt), end="")


def _mount_subapps() -> None:
    from xfer.bench_cli import bench
    from xfer.data.cli import data_app

    app.add_typer(data_app, name="data", help="collect, inspect, import and export offline datasets")
    app.command()(bench)


def main() -> None:
    """Console entry point: user errors print one clear message (and a hint), never a traceback."""
    try:
        _mount_subapps()
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except XferError as error:
        err.print(f"[red]error:[/red] {escape(error.message)}", highlight=False)  # user text: no markup
        if error.hint:
            err.print(f"  hint: {error.hint}", highlight=False, markup=False)
        sys.exit(getattr(error, "exit_code", 2))  # 130 for a run aborted by a second Ctrl-C
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except Exception as click_error:  # click usage errors carry their own formatting
        import click

        # typer >= 0.2x vendors click: its usage errors derive from typer.TyperException, not click's
        usage = (click.ClickException, *((typer.TyperException,) if hasattr(typer, "TyperException") else ()))
        if isinstance(click_error, usage) and hasattr(click_error, "show"):
            click_error.show()
            sys.exit(getattr(click_error, "exit_code", 2))
        raise


if __name__ == "__main__":
    main()
