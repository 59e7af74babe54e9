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

from xfer.errors import XferError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="xfer: transfer reinforcement learning with world models.")
out = Console()
err = Console(stderr=True)

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
    err.print(f"[green]ok[/green]: {recipe} is a valid {resolved.method} recipe")


@app.command()
def run(
    recipe: Path,
    set_: SetOption = None,
    stop_after: Annotated[int | None, typer.Option(
        help="stop with a checkpoint once the loop reaches this step (resume later)")] = None,
) -> None:
    """Run a recipe in a new run directory (runs/NAME/TIMESTAMP)."""
    from xfer.run.runner import start_run

    rundir = start_run(recipe, set_ or [], stop_at=stop_after, console=err)
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


def _mount_subapps() -> None:
    from xfer.bench_cli import bench
    from xfer.data.cli import data_app

    app.add_typer(data_app, name="data", help="collect, inspect, import and export offline datasets")
    app.command()(bench)


def main() -> None:
    """Console entry point: user errors print one clear message (and a hint), never a traceback."""
    try:
        _mount_subapps()
        app(standalone_mode=False)
    except XferError as error:
        err.print(f"[red]error:[/red] {error.message}", highlight=False)
        if error.hint:
            err.print(f"  hint: {error.hint}", highlight=False)
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
