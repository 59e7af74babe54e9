"""``xfer bench``: time full training steps on synthetic data at a recipe's shapes."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

Backbone = Literal["dreamer", "muzero"]


def bench(
    backbone: Annotated[str, typer.Option(help="dreamer | muzero")] = "dreamer",
    preset: Annotated[str, typer.Option(help="size preset (dreamer: tiny, small, paper, authors)")] = "paper",
    batch: Annotated[int, typer.Option(help="batch size B")] = 16,
    seq: Annotated[int, typer.Option(help="sequence length L (dreamer)")] = 50,
    steps: Annotated[int, typer.Option(help="timed steps")] = 5,
    warmup: Annotated[int, typer.Option(help="untimed warm-up steps")] = 1,
    action_dim: Annotated[int, typer.Option(help="continuous action size (dreamer)")] = 4,
    state_dim: Annotated[int | None, typer.Option(
        help="dreamer: a state vector of this size instead of 64x64x3 images")] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the step")] = False,
    amp: Annotated[bool, typer.Option("--amp", help="bf16 autocast of the training step (and, on CUDA, "
                                                    "EfficientZero's inference)")] = False,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Median seconds per training step, updates/s, peak memory and achieved GFLOP/s."""
    import torch

    from xfer.run.device import select_device

    console = Console(stderr=True)
    dev = select_device(device, say=console.print)
    if backbone == "dreamer":
        from xfer.dreamer.bench import bench_train_step
        from xfer.dreamer.config import DreamerConfig

        cfg = DreamerConfig.model_validate({"preset": preset, "compile": compile, "amp": amp})
        obs_shapes = {"state": (state_dim,)} if state_dim else None
        result = bench_train_step(cfg, batch=batch, seq=seq, act_dim=action_dim, steps=steps, warmup=warmup,
                                  threads=threads, device=str(dev), obs_shapes=obs_shapes)
    elif backbone == "muzero":
        from xfer.muzero.bench import bench_mcts
        from xfer.muzero.bench import bench_train_step as mz_step
        from xfer.muzero.config import EfficientZeroConfig

        if threads:
            torch.set_num_threads(threads)
        cfg = EfficientZeroConfig.model_validate({"preset": preset, "compile": compile, "amp": amp})
        result = {"train": mz_step(cfg, batch=batch, steps=steps, warmup=warmup, device=dev),
                  "mcts": bench_mcts(cfg, batch_envs=8, device=dev),
                  "threads": torch.get_num_threads(), "device": str(dev), "compile": compile, "amp": amp}
    else:
        from xfer.errors import XferError

        raise XferError(f"unknown backbone {backbone!r}: use dreamer or muzero")
    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return
    table = Table(title=f"xfer bench: {backbone} preset {preset}")
    table.add_column("quantity")
    table.add_column("value")
    for key, value in _flatten(result).items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console().print(table)


def _flatten(data: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
