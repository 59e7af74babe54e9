"""Helpers for the dreamer method's end-to-end tests: tiny recipes on dmc cartpole-balance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from xfer.run.checkpoint import Checkpointer

TINY_TRAIN = {"env_steps": 300, "prefill": 100, "pretrain": 2, "train_every": 40, "batch": 3, "seq_len": 8}


def write_recipe(directory: Path, name: str, dreamer: dict[str, Any], **top: Any) -> Path:
    """A tiny dreamer recipe on cartpole-balance: 50-step episodes (time limit 100, action repeat 2)."""
    recipe: dict[str, Any] = {
        "method": "dreamer", "name": name, "device": "cpu", "seed": 5,
        "logdir": str(directory / "runs"), "datadir": str(directory / "data"),
        "target": offline_target(None), "env": {"time_limit": 100},
        "eval": {"every": 200, "episodes": 1, "video": False}, "checkpoint": {"every": 100, "keep": 2},
        "logging": {"every": 100, "tensorboard": False, "live": False}, "perf": {"threads": 1},
        "dreamer": {"model": {"preset": "tiny"}, **dreamer}, **top,
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def latest(rundir: Path) -> dict[str, Any]:
    found = Checkpointer(rundir / "checkpoints").load_latest()
    assert found is not None, f"{rundir} has no checkpoint"
    return found[1]


def assert_same_learner(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Same module parameters (and update count) in two checkpoints' learner states."""
    la, lb = a["method"]["learner"], b["method"]["learner"]
    assert la["updates"] == lb["updates"]
    for module in ("world_model", "behavior"):
        for key, value in la[module].items():
            assert torch.equal(value, lb[module][key]), f"{module}.{key} differs"


TINY_OFFLINE = {"updates": 6, "batch": 3, "seq_len": 8}
RANDOM_DATASET = {"collect": {"policy": "random", "episodes": 2, "seed": 1}}


def offline_target(dataset: dict[str, Any] | None = RANDOM_DATASET) -> dict[str, Any]:
    target: dict[str, Any] = {"suite": "dmc", "task": "cartpole-balance"}
    if dataset is not None:
        target["dataset"] = dataset
    return target
