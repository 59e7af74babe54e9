"""Throughput of the EfficientZero backbone: batched MCTS and one training step, on synthetic inputs.

``bench_mcts`` splits search time into the network (``recurrent_inference`` calls, one per simulation for
the whole batch) and tree bookkeeping (selection, expansion, backup as NumPy vector ops), so a regression
towards per-node Python work shows up as a growing tree share.
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import numpy as np
import torch

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.learner import Learner
from xfer.muzero.mcts import run_mcts
from xfer.muzero.networks import EfficientZeroNet
from xfer.muzero.targets import TrainBatch


def _random_obs(cfg: EfficientZeroConfig, batch: int, frames: int) -> torch.Tensor:
    shape = (batch, frames * cfg.image_channels, cfg.image_size, cfg.image_size)
    return torch.randint(0, 256, shape, dtype=torch.uint8)


def bench_mcts(cfg: EfficientZeroConfig, batch_envs: int, simulations: int | None = None, n_actions: int = 18,
               repeats: int = 3, seed: int = 0, device: str | torch.device = "cpu") -> dict[str, float]:
    """Search ``batch_envs`` roots, ``simulations`` each (default: the config's), leaves evaluated on
    ``device``; medians of ``repeats``."""
    simulations = cfg.num_simulations if simulations is None else simulations
    cfg = cfg.model_copy(update={"n_actions": n_actions})
    torch.manual_seed(seed)
    net = EfficientZeroNet(cfg).to(device).eval()
    rng = np.random.default_rng(seed)
    root = net.initial_inference(_random_obs(cfg, batch_envs, cfg.frame_stack).to(device))
    legal = np.ones((batch_envs, n_actions), dtype=bool)
    run_mcts(net, root, legal, cfg, rng, num_simulations=2)  # warm-up
    totals, network = [], []
    for _ in range(repeats):
        result = run_mcts(net, root, legal, cfg, rng, num_simulations=simulations)
        totals.append(result.total_seconds)
        network.append(result.network_seconds)
    total, net_s = statistics.median(totals), statistics.median(network)
    return {"batch_envs": batch_envs, "simulations": simulations, "ms_per_search": 1e3 * total,
            "sims_per_s": batch_envs * simulations / total, "searches_per_s": batch_envs / total,
            "network_fraction": net_s / total, "tree_fraction": 1.0 - net_s / total,
            "tree_us_per_sim": 1e6 * (total - net_s) / simulations}


def synthetic_batch(cfg: EfficientZeroConfig, batch: int, seed: int = 0) -> TrainBatch:
    """A TrainBatch of random frames, actions and plausible targets, at the config's shapes."""
    gen = torch.Generator().manual_seed(seed)
    K, A = cfg.unroll_steps, cfg.n_actions
    policy = torch.rand(batch, K + 1, A, generator=gen)
    return TrainBatch(
        obs=_random_obs(cfg, batch, cfg.frame_stack + K),
        actions=torch.randint(0, A, (batch, K), generator=gen),
        mask=torch.ones(batch, K), legal=torch.ones(batch, A, dtype=torch.bool),
        target_value=torch.randn(batch, K + 1, generator=gen) * 5,
        target_prefix=torch.randint(-2, 3, (batch, K), generator=gen).float(),
        target_policy=policy / policy.sum(-1, keepdim=True), weights=torch.ones(batch),
        game_ids=np.zeros(batch, dtype=np.int64), steps=np.zeros(batch, dtype=np.int64),
        task_ids=np.zeros(batch, dtype=np.int64))


def move_batch(batch: TrainBatch, device: str | torch.device) -> TrainBatch:
    """``batch`` with its tensors on ``device`` (the learner reads batches where its network is)."""
    tensors = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
    return dataclasses.replace(batch, **{name: value.to(device) for name, value in tensors.items()
                                         if isinstance(value, torch.Tensor)})


def bench_train_step(cfg: EfficientZeroConfig, batch: int, steps: int = 3, seed: int = 0, warmup: int = 1,
                     device: str | torch.device = "cpu") -> dict[str, float]:
    """Seconds per learner step (loss of Eq. 3 with K unroll steps, backward, optimiser) on ``device`` after
    ``warmup`` untimed ones; the config's ``amp`` / ``compile`` apply."""
    torch.manual_seed(seed)
    learner = Learner(cfg, device=device)
    data = move_batch(synthetic_batch(cfg, batch, seed), device)
    for _ in range(warmup):
        learner.update(data)
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    times, forward = [], []
    for _ in range(steps):
        sync()
        tic = time.perf_counter()
        losses = learner.losses(data)
        sync()
        mid = time.perf_counter()
        learner.step(losses.total)
        sync()
        times.append(time.perf_counter() - tic)
        forward.append(mid - tic)
    median = statistics.median(times)
    return {"batch": batch, "median_s_per_step": median,
            "forward_fraction": statistics.median(forward) / median, "samples_per_s": batch / median,
            "parameters": sum(p.numel() for p in learner.net.parameters())}
