"""Timing of full DreamerV2 training steps (world model + actor + critic) on synthetic data.

The default shapes are sheeprl 0.8.4's DreamerV2 defaults (64×64×3 images, B 16 × L 50, 4-d continuous
action) with the ``paper`` preset (CNN depth 48, GRU 600, 32×32 latents, MLPs 4×400, horizon 15), so the
result compares directly with sheeprl's DreamerV2 (``benchmarks/dreamer_vs_sheeprl.py`` times both side by
side).
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from xfer.dreamer.agent import DreamerAgent
from xfer.dreamer.config import DreamerConfig


def synthetic_batch(obs_shapes: Mapping[str, tuple[int, ...]], act_dim: int, discrete: bool, batch: int,
                    seq: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random [batch, seq] data in the world model's batch convention (one episode start per row)."""
    gen = torch.Generator().manual_seed(seed)
    data: dict[str, torch.Tensor] = {}
    if "image" in obs_shapes:
        shape = (batch, seq, *obs_shapes["image"])
        data["image"] = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
    if "state" in obs_shapes:
        data["state"] = torch.randn(batch, seq, *obs_shapes["state"], generator=gen)
    if discrete:
        index = torch.randint(0, act_dim, (batch, seq), generator=gen)
        data["action"] = torch.nn.functional.one_hot(index, act_dim).float()
    else:
        data["action"] = torch.rand(batch, seq, act_dim, generator=gen) * 2 - 1
    data["action"][:, 0] = 0
    data["reward"] = torch.randn(batch, seq, generator=gen)
    data["is_first"] = torch.zeros(batch, seq)
    data["is_first"][:, 0] = 1
    data["is_terminal"] = torch.zeros(batch, seq)
    return data


def matmul_gflops(size: int = 1024, reps: int = 10, device: str | torch.device = "cpu") -> float:
    """This machine's fp32 matrix-multiply throughput (best of ``reps``)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b)
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def bench_train_step(cfg: DreamerConfig, batch: int = 16, seq: int = 50, act_dim: int = 4, steps: int = 5,
                     warmup: int = 2, threads: int | None = 2, compile: bool | None = None,
                     amp: bool | None = None, device: str = "cpu", discrete: bool = False,
                     obs_shapes: Mapping[str, tuple[int, ...]] | None = None,
                     count_flops: bool = True) -> dict[str, Any]:
    """Time ``steps`` full training steps after ``warmup`` ones and return median seconds per step, updates/s,
    peak memory, the step's FLOPs (``torch.utils.flop_counter``: matmuls and convs, forward and backward),
    achieved GFLOP/s, this machine's matmul GFLOP/s, the load average and the shapes. ``compile``/``amp``
    override the config's switches when given."""
    if threads:
        torch.set_num_threads(threads)
    overrides = {key: value for key, value in (("compile", compile), ("amp", amp)) if value is not None}
    cfg = cfg.model_copy(update=overrides)
    obs_shapes = dict(obs_shapes or {"image": (64, 64, 3)})
    torch.manual_seed(0)
    agent = DreamerAgent(obs_shapes, act_dim, discrete, cfg, device=device)
    data = agent.to_tensors(synthetic_batch(obs_shapes, act_dim, discrete, batch, seq))
    dev = agent.device
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        agent.train_step(data)
    times = []
    for _ in range(steps):
        sync()
        start = time.perf_counter()
        agent.train_step(data)
        sync()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    flops = 0
    if count_flops:
        counter = FlopCounterMode(display=False)
        with counter:
            agent.train_step(data)
        flops = counter.get_total_flops()
    return {
        "median_s_per_step": median, "min_s_per_step": min(times), "max_s_per_step": max(times),
        "s_per_step_each": times,
        "updates_per_s": 1.0 / median, "peak_mem_mb": _peak_memory_mb(dev),
        "gflop_per_step": flops / 1e9, "achieved_gflops": flops / 1e9 / median,
        "matmul_gflops": matmul_gflops(device=dev), "threads": torch.get_num_threads(),
        "load_avg_1min": os.getloadavg()[0], "device": str(dev), "compile": cfg.compile, "amp": cfg.amp,
        "shapes": {"batch": batch, "seq": seq, "obs": obs_shapes, "act_dim": act_dim, "discrete": discrete,
                   "cnn_depth": cfg.cnn_depth, "deter": cfg.deter, "stoch": cfg.stoch, "classes": cfg.classes,
                   "mlp": f"{cfg.actor_layers}x{cfg.mlp_units}", "horizon": cfg.horizon},
        "steps": steps, "warmup": warmup,
    }
