"""``xfer data``: collect, inspect, import and export offline datasets (a typer sub-app the main CLI mounts).

Errors are raised as :class:`~xfer.errors.XferError`; the main CLI prints them.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from xfer.envs.settings import EnvSettings
from xfer.errors import XferError
from xfer.run.storage import writing

data_app = typer.Typer(no_args_is_help=True, add_completion=False,
                       help="collect, inspect, import and export offline datasets")


class DataFormat(StrEnum):
    minari = "minari"


def env_settings_from(overrides: list[str]) -> EnvSettings:
    """``--set env.key=value`` overrides (YAML values) as EnvSettings; errors name the key."""
    from xfer.recipe_io import apply_overrides

    for item in overrides:
        if not item.startswith("env."):
            raise XferError(f"--set {item!r}: only env.* settings apply to data collection",
                            hint="e.g. --set env.image_size=64 --set env.action_repeat=2")
    data = apply_overrides({"env": {}}, overrides)["env"]
    try:
        return EnvSettings.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key = "env." + ".".join(str(part) for part in first["loc"])
        raise XferError(f"--set {key}: {first['msg']} (found {first.get('input')!r})") from err


@data_app.command("collect")
def collect_command(
    suite: Annotated[str, typer.Option(help="environment suite, e.g. metaworld, dmc")],
    task: Annotated[str, typer.Option(help="task of the suite, e.g. drawer-close")],
    out: Annotated[Path, typer.Option(help="dataset directory to create (or resume)")],
    policy: Annotated[str, typer.Option(help="scripted | random | checkpoint:RUNDIR | a suite policy")] \
        = "random",
    episodes: Annotated[int, typer.Option(min=1, help="number of episodes")] = 10,
    workers: Annotated[int, typer.Option(min=1, help="parallel worker processes")] = 1,
    seed: Annotated[int, typer.Option(help="seed; episode i is seeded from (seed, i)")] = 0,
    set_: Annotated[list[str] | None, typer.Option("--set", help="env setting, e.g. env.image_size=64")] \
        = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Run a policy for N episodes and write them as an xfer dataset."""
    from xfer.data.collect import collect

    settings = env_settings_from(set_ or [])
    path = collect(suite, task, settings, policy, episodes, out, seed=seed, workers=workers,
                   progress=progress)
    _print_info(path, Console())


@data_app.command("info")
def info_command(
    path: Annotated[Path, typer.Argument(help="dataset directory")],
    verify: Annotated[bool, typer.Option(help="check every episode file's integrity")] = False,
) -> None:
    """Print what a dataset holds: episodes, steps, returns, success, spaces, policy."""
    _print_info(path, Console(), verify=verify)


def _print_info(path: Path, console: Console, verify: bool = False) -> None:
    from xfer.data.dataset import Dataset

    dataset = Dataset.open(path)
    table = Table(title=escape(f"dataset {path}"), show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    for field, value in info_rows(dataset.meta):
        table.add_row(field, escape(value))  # values come from dataset.json: never markup
    console.print(table)
    if verify:
        problems = dataset.verify()
        for file, problem in problems:
            console.print(f"[red]corrupt[/red] {escape(f'{file}: {problem}')}", highlight=False)
        if problems:
            raise XferError(f"dataset {path}: {len(problems)} of {len(dataset)} episode files are corrupt or "
                            "malformed (training would refuse them)",
                            hint="move them away; the other episodes are intact")
        console.print(f"all {len(dataset)} episode files are intact")


def info_rows(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """The rows of ``xfer data info``: (field, value) strings from a dataset manifest."""
    obs, action = meta.get("observation", {}), meta.get("action", {})
    length, ret = meta.get("length", {}), meta.get("return", {})
    shape = "x".join(str(n) for n in obs.get("image", {}).get("shape", []))
    kind = "discrete (one-hot)" if action.get("discrete") else "continuous [-1, 1]"
    success = f"{meta['success_rate']:.0%}" if meta.get("success_defined", True) and "success_rate" in meta \
        else "n/a (suite defines no success)"
    rows = [
        ("suite / task", f"{meta.get('suite')} / {meta.get('task')}"),
        ("episodes", str(meta.get("episodes", 0))),
        ("steps", str(meta.get("steps", 0))),
        ("length min / mean / max",
         f"{length.get('min')} / {length.get('mean', 0):.1f} / {length.get('max')}" if length else "-"),
        ("return mean ± std", f"{ret['mean']:.2f} ± {ret['std']:.2f}" if ret else "-"),
        ("return min / max", f"{ret['min']:.2f} / {ret['max']:.2f}" if ret else "-"),
        ("success rate", success),
        ("image", f"{shape} uint8" if shape else "none (state only)"),
    ]
    if "state" in obs:
        rows.append(("state", f"{obs['state']['shape'][0]} float32"))
    rows += [
        ("action", f"{action.get('size')} {kind}"),
        ("policy", str(meta.get("policy"))),
        ("seed", str(meta.get("seed"))),
        ("source", str(meta.get("source", "-"))),
        ("format version", str(meta.get("format_version"))),
        ("created", str(meta.get("created", "-"))),
    ]
    return rows


@data_app.command("export")
def export_command(
    path: Annotated[Path, typer.Argument(help="xfer dataset directory")],
    dataset_id: Annotated[str, typer.Option("--id", help="Minari dataset id, e.g. xfer/drawer-close-v0")],
    format_: Annotated[DataFormat, typer.Option("--format", help="target format")] = DataFormat.minari,
) -> None:
    """Export an xfer dataset to another format (Minari, under MINARI_DATASETS_PATH)."""
    from xfer.data.minari_io import export_minari

    where = export_minari(path, dataset_id)
    Console().print(f"exported {path} as Minari dataset {dataset_id!r} ({where})", markup=False)


@data_app.command("import")
def import_command(
    dataset_id: Annotated[str, typer.Argument(help="Minari dataset id (local)")],
    out: Annotated[Path, typer.Option(help="xfer dataset directory to create")],
    format_: Annotated[DataFormat, typer.Option("--format", help="source format")] = DataFormat.minari,
) -> None:
    """Import a dataset from another format (a local Minari dataset) as an xfer dataset."""
    from xfer.data.minari_io import import_minari

    with writing(out):
        path = import_minari(dataset_id, out)
    _print_info(path, Console())


@data_app.command("export-replay")
def export_replay_command(
    rundir: Annotated[Path, typer.Argument(help="run directory with replay/ and metrics.jsonl")],
    out: Annotated[Path, typer.Option(help="dataset directory to create")],
    until_return: Annotated[float | None, typer.Option(
        help="stop when eval/return first reaches this")] = None,
    fraction: Annotated[float | None, typer.Option(
        min=0.0, help="stop at this fraction of the run's best eval/return (1/3: medium-replay, "
                      "1: medium-expert)")] = None,
    replay: Annotated[str, typer.Option(help="replay directory inside the run")] = "replay",
    steps_per_transition: Annotated[int | None, typer.Option(
        min=1, help="env_steps per stored step [default: the run's action repeat, as xfer runs count "
                    "simulator steps]")] = None,
) -> None:
    """Make an offline dataset from a run's replay buffer up to a return threshold (CoWorld's
    medium-replay / medium-expert). An efficientzero run's replay keeps its search statistics
    (search_policy, search_value: XTRA's offline_targets: stored)."""
    from xfer.data.replay_export import export_replay
    from xfer.muzero.search_dataset import export_run, is_search_run

    with writing(out):
        if not (rundir / replay).is_dir() and is_search_run(rundir):
            if steps_per_transition is not None:
                raise XferError("--steps-per-transition is for a Dreamer run's replay; an efficientzero "
                                "run's is counted in agent steps", hint="leave it out")
            export_run(rundir, out, until_return, fraction)
        else:
            export_replay(rundir, out, until_return, fraction, replay, steps_per_transition)
    _print_info(out, Console())
