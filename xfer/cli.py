"""The ``xfer`` command line: a thin typer app; each command delegates to a module.

Heavy modules (torch, simulators) are imported inside the commands that need them, so ``xfer
list-plugins`` and ``xfer validate`` answer in about a second.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from xfer.errors import XferError, os_error

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
) -> None:
    """Run a recipe in a new run directory (runs/NAME/TIMESTAMP)."""
    from xfer.run.runner import start_run

    rundir = start_run(recipe, set_ or [], stop_at=stop_after, console=err, rundir=rundir)
    out.print(f"run directory: {rundir}", highlight=False)


@app.command()
def resume(
    rundir: Path,
    stop_after: Annotated[int | None, typer.Option(help="stop again at this step")] = None,
) -> None:
    """Continue a run from its newest checkpoint, exactly where it stopped."""
    from xfer.run.runner import resume_run

    resume_run(rundir, stop_at=stop_after, console=err)
    out.print(f"run directory: {rundir}", highlight=False)


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
    out.print(json.dumps(result, indent=2))


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
    from xfer.sweep import Sweep, create_sweep, run_local, run_ray
    from xfer.sweep_table import sweep_table

    if resume_dir is not None:
        swept = Sweep.load(resume_dir)
    elif recipe is not None:
        swept = create_sweep(recipe, grid or [], set_ or [], root)
    else:
        raise XferError("give a RECIPE (with --grid) or --resume SWEEPDIR")
    err.print(f"sweep directory: {swept.directory} ({len(swept.runs)} runs)", highlight=False)
    if backend == "ray":
        run_ray(swept, address, gpus_per_run, cpus_per_run, on_change=lambda s: err.print(sweep_table(s)))
    elif backend == "local":
        run_local(swept, max_parallel, on_change=lambda s: None)
    else:
        raise XferError(f"unknown backend {backend!r}: use local or ray")
    out.print(sweep_table(swept))
    failed = [r for r in swept.runs if r.status == "failed"]
    if failed:
        err.print(f"{len(failed)} of {len(swept.runs)} runs failed; logs in {swept.directory / 'logs'}; "
                  f"rerun them with `xfer sweep --resume {swept.directory}`", highlight=False)
        raise typer.Exit(1)


@app.command()
def plot(
    paths: Annotated[list[Path], typer.Argument(help="run or sweep directories")],
    metric: Annotated[str, typer.Option(
        help="metric name; * matches several (vid2act/weight/*)")] = "eval/return",
    x: Annotated[str, typer.Option(help="x axis counter")] = "env_steps",
    group_by: Annotated[str, typer.Option(help="recipe key that names a curve")] = "method",
    out_path: Annotated[Path, typer.Option("--out", help="PNG to write")] = Path("curves.png"),
    title: Annotated[str | None, typer.Option(help="figure title")] = None,
) -> None:
    """Learning curves: mean and 95% band over seeds, one curve per group."""
    from xfer.plot import find_runs, plot_curves

    runs = find_runs(paths)
    try:
        written = plot_curves(runs, metric, x, group_by, out_path, title)
    except OSError as error:
        raise os_error(error, f"writing the plot {out_path}") from error
    out.print(f"wrote {written}", highlight=False, markup=False)


@app.command()
def table(
    paths: Annotated[list[Path], typer.Argument(help="run or sweep directories")],
    metric: Annotated[str, typer.Option(help="metric to tabulate")] = "eval/return",
    group_by: Annotated[str, typer.Option(help="recipe key for the columns")] = "method",
    rows: Annotated[str, typer.Option(help="recipe key for the rows")] = "target.task",
    last: Annotated[int, typer.Option(help="average each run's last K values")] = 1,
    fmt: Annotated[str, typer.Option("--format", help="md | csv")] = "md",
) -> None:
    """Final performance, mean ± std over seeds (the papers' tables), as Markdown or CSV."""
    from xfer.plot import final_table, find_runs, format_table

    if fmt not in ("md", "csv"):
        raise XferError(f"unknown format {fmt!r}: use md or csv")
    row_names, cols, cells = final_table(find_runs(paths), metric, group_by, rows, last)
    print(format_table(row_names, cols, cells, fmt, rows), end="")


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
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except Exception as click_error:  # click usage errors carry their own formatting
        import click

        if isinstance(click_error, click.ClickException):
            click_error.show()
            sys.exit(click_error.exit_code)
        raise


if __name__ == "__main__":
    main()
