"""End-to-end part of ``benchmarks/gpu_check.py``: short real runs of the five methods through their recipes,
with an aten-level audit of host/device copies and of heavy compute left on the CPU."""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = Path(__file__).resolve().parents[1]


class Budget(Protocol):
    def left(self) -> float: ...

    def allows(self, seconds: float) -> bool: ...

# ---- 4. end to end -----------------------------------------------------------------------------------
HEAVY = {
    "mm",
    "addmm",
    "bmm",
    "baddbmm",
    "convolution",
    "_convolution",
    "cudnn_convolution",
    "linear",
    "_thnn_fused_lstm_cell",
    "_thnn_fused_gru_cell",
    "lstm",
    "gru",
    "native_layer_norm",
}


class DeviceAudit(TorchDispatchMode):
    """Counts, for every aten op: copies between the CPU and another device (``h2d``, ``d2h``; ``.item()``
    of a device tensor counts as ``d2h``) and heavy compute ops whose tensor inputs are on the CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = {"h2d": 0, "d2h": 0, "cpu_heavy_ops": 0}
        self.cpu_ops: dict[str, int] = {}

    def _copy(self, src: torch.device, dst: torch.device) -> None:
        if src.type == "cpu" and dst.type != "cpu":
            self.counts["h2d"] += 1
        elif src.type != "cpu" and dst.type == "cpu":
            self.counts["d2h"] += 1

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name == "_to_copy" and isinstance(args[0], torch.Tensor):
            self._copy(args[0].device, torch.device(kwargs.get("device") or args[0].device))
        elif name == "copy_" and len(args) > 1 and isinstance(args[1], torch.Tensor):
            self._copy(args[1].device, args[0].device)
        elif name == "_local_scalar_dense" and args[0].device.type != "cpu":
            self.counts["d2h"] += 1
        elif name in HEAVY and any(
            isinstance(a, torch.Tensor)
            and a.device.type == "cpu"
            and a.numel() > 256
            and a.is_floating_point()
            for a in args
        ):
            self.counts["cpu_heavy_ops"] += 1
            self.cpu_ops[name] = self.cpu_ops.get(name, 0) + 1
        return func(*args, **kwargs)


def _dreamer_sets(updates: int) -> list[str]:
    prefill = 60
    return [
        "dreamer.train.batch=8",
        "dreamer.train.seq_len=16",
        f"dreamer.train.prefill={prefill}",
        f"dreamer.train.pretrain={updates // 2}",
        "dreamer.train.train_every=2",
        f"dreamer.train.env_steps={prefill + updates}",
    ]


def _vid2act_sets(updates: int) -> list[str]:
    return [
        "sources.0.dataset.collect.episodes=1",
        "sources.1.dataset.collect.episodes=1",
        "env.time_limit=50",
        f"vid2act.pretrain.steps={updates}",
        "vid2act.pretrain.batch=6",
        "vid2act.pretrain.seq=16",
        f"vid2act.pretrain.log_every={max(1, updates // 10)}",
        "vid2act.transfer.schedule.prefill=100",
        f"vid2act.transfer.schedule.pretrain={updates // 2}",
        "vid2act.transfer.schedule.train_every=2",
        f"vid2act.transfer.env_steps={100 + updates}",
    ]


def _coworld_sets(updates: int) -> list[str]:
    return [
        "coworld.model.preset=tiny",
        "coworld.model.horizon=5",
        "coworld.batch_size=6",
        "coworld.batch_length=16",
        "coworld.prefill=50",
        f"coworld.pretrain={updates // 4}",
        "coworld.train_every=2",
        f"coworld.source_warmup_steps={50 + updates // 2}",
        f"coworld.target_iterations={max(2, updates // 4)}",
        f"coworld.source_iterations={updates // 2}",
        "coworld.rounds=2",
        "env.time_limit=50",
        "target.dataset.collect.policy=random",
        "target.dataset.collect.episodes=2",
    ]


def _muzero_recipe(work: Path, method: str, updates: int, device: str) -> Path:
    import yaml

    model = {
        "preset": "tiny",
        "min_replay_size": 16,
        "training_steps": updates,
        "batch_size": 16,
        "num_simulations": 4,
    }
    selfplay = {"env_steps": 8 * updates, "num_envs": 4, "eval_envs": 1, "segment_length": 8}
    section: dict[str, Any] = {"model": model, "selfplay": selfplay}
    recipe: dict[str, Any] = {
        "method": method,
        "name": method,
        "device": device,
        "seed": 1,
        "target": {"suite": "atari", "task": "demon-attack"},
        "env": {"image_size": 32, "time_limit": 100},
        "eval": {"every": 10**6, "episodes": 1},
    }
    if method == "xtra":
        section["finetune"] = {"task_weights": {"cycle": 4, "count_steps": 2, "warmup": 0}}
        section["stage1"] = {
            "teacher_steps": max(2, updates // 4),
            "distill_steps": max(2, updates // 4),
            "log_every": 1,
        }
        recipe["sources"] = [
            {"suite": "atari", "task": game, "dataset": {"collect": {"policy": "random", "episodes": 1}}}
            for game in ("carnival", "phoenix")
        ]
    recipe[method] = section
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"{method}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


# method -> (modules the run needs, recipe maker(work, updates, device) -> path, extra --set overrides)
E2E: dict[str, tuple[tuple[str, ...], Callable[..., Path], Callable[[int], list[str]]]] = {
    "dreamer": (("gymnasium",), lambda *a: ROOT / "recipes/dreamer_gym_cartpole.yaml", _dreamer_sets),
    "vid2act": (("metaworld",), lambda *a: ROOT / "recipes/quickstart.yaml", _vid2act_sets),
    "coworld": (("metaworld",), lambda *a: ROOT / "recipes/coworld_metaworld.yaml", _coworld_sets),
    "efficientzero": (("ale_py",), lambda w, u, d: _muzero_recipe(w, "efficientzero", u, d), lambda u: []),
    "xtra": (("ale_py",), lambda w, u, d: _muzero_recipe(w, "xtra", u, d), lambda u: []),
}
LOSS_KEYS = ("wm/loss", "train/total", "target/wm/loss", "source/wm/loss", "xtra/total", "xtra/student/total")


def loss_trend(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The first loss key logged at least 4 times: mean of its first and last quarter."""
    keys = [k for k in LOSS_KEYS if sum(k in r and r[k] is not None for r in rows) >= 4]
    keys += sorted({k for r in rows for k in r if k.endswith(("/loss", "/total"))} - set(keys))
    for key in keys:
        values = [r[key] for r in rows if r.get(key) is not None]
        if len(values) >= 4:
            q = max(1, len(values) // 4)
            first, last = float(np.mean(values[:q])), float(np.mean(values[-q:]))
            return {
                "key": key,
                "first": first,
                "last": last,
                "points": len(values),
                "decreased": last < first,
            }
    return {"key": None, "decreased": False, "note": "no loss logged 4 times"}


def run_method(method: str, device: torch.device, updates: int, work: Path) -> dict[str, Any]:
    import importlib.util

    from xfer.run.logger import read_metrics
    from xfer.run.runner import start_run

    needs, make_recipe, sets = E2E[method]
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        return {"skipped": f"not installed: {', '.join(missing)}"}
    common = [
        f"device={device}",
        f"logdir={work / 'runs'}",
        f"datadir={work / 'data'}",
        "eval.video=false",
        "eval.episodes=1",
        "eval.every=1000000",
        "logging.every=4",
        "logging.live=false",
        "logging.tensorboard=false",
        "checkpoint.every=1000000",
    ]
    recipe = make_recipe(work, updates, str(device))
    audit = DeviceAudit()
    tic = time.perf_counter()
    from rich.console import Console

    with audit:
        rundir = start_run(recipe, [*common, *sets(updates)], console=Console(quiet=True))
    rows = read_metrics(rundir / "metrics.jsonl")
    done = max([int(r["updates"]) for r in rows if r.get("updates") is not None], default=0)
    per = {k: v / max(done, 1) for k, v in audit.counts.items()}
    out = {
        "seconds": time.perf_counter() - tic,
        "updates": done,
        "loss": loss_trend(rows),
        "per_update (whole run: acting and updates)": per,
        "cpu_ops": audit.cpu_ops,
    }
    out["ok"] = (
        done > 0 and out["loss"]["decreased"] and (device.type == "cpu" or audit.counts["cpu_heavy_ops"] == 0)
    )
    return out


def check_e2e(device: torch.device, tiny: bool, methods: list[str], budget: Budget) -> dict[str, Any]:
    os.environ.setdefault("MUJOCO_GL", "egl")
    out: dict[str, Any] = {}
    updates = 12 if tiny else 100
    with tempfile.TemporaryDirectory(prefix="xfer-gpu-check-") as tmp:
        for method in methods:
            if not budget.allows(20 if tiny else 60):
                out[method] = {"skipped": f"budget: {budget.left():.0f} s left"}
                continue
            try:
                out[method] = run_method(method, device, updates, Path(tmp) / method)
            except Exception as err:  # one method's failure is a result, not the end of the check
                out[method] = {
                    "error": f"{type(err).__name__}: {err}",
                    "trace": traceback.format_exc(limit=4),
                }
    return out


