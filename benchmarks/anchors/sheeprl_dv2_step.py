#!/usr/bin/env python
"""Anchor timing harness: one full DreamerV2 training step of sheeprl (PyPI `sheeprl`), on random data.

A "training step" is exactly sheeprl's own `sheeprl.algos.dreamer_v2.dreamer_v2.train(...)`:
  world-model loss (encoder, RSSM unroll over L steps, decoder, reward, KL) + Adam step,
  imagination over `horizon` steps from all B*L posterior states + actor loss + Adam step,
  critic loss + Adam step.
The models are built with sheeprl's own `build_agent` from its own hydra configs (`exp=dreamer_v2`),
so the architecture is sheeprl's DreamerV2 (CNN depth 48, GRU 600 + LayerNorm, 32x32 discrete latents,
dense 400 x 4 layers, ELU, horizon 15), unless overridden on the command line.

Usage (inside $ANCHOR_VENV, see README.md):
  python sheeprl_dv2_step.py --batch 16 --seq 50 --steps 10 --warmup 2 --threads 2
  python sheeprl_dv2_step.py --batch 50 --seq 50 --steps 5  --warmup 1 --threads 2
  python sheeprl_dv2_step.py --wm-only ...     # time only the world-model loss + update
  python sheeprl_dv2_step.py --compile ...     # sheeprl's algo.compile.enabled=True (torch.compile, default mode)
  python sheeprl_dv2_step.py --precision bf16-mixed ...
  python sheeprl_dv2_step.py --override algo.world_model.encoder.cnn_channels_multiplier=32 ...

Prints one line per step (wall and process-CPU seconds), then
  RESULT median_s_per_step=<float> min=<float> max=<float> median_cpu_s_per_step_div_threads=<float> B=<int> L=<int> ...
and one JSON line (per-step wall times, load average before/after, parameter counts, versions).
Random data is generated outside the timed region; warm-up steps are not counted.
Sanity check done on 2026-11-23: one call updates 60 of the 62 parameter tensors of WM+actor+critic.
xfer copy (benchmarks/anchors/): torch.distributions validation set from sheeprl's config as its CLI does.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", "-B", type=int, default=16)
    p.add_argument("--seq", "-L", type=int, default=50)
    p.add_argument("--steps", "-N", type=int, default=10, help="timed training steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps (compile happens here)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--horizon", type=int, default=15)
    p.add_argument("--image", type=int, default=64, help="image side (sheeprl DV2 CNN expects 64)")
    p.add_argument("--action", choices=["continuous", "discrete"], default="continuous")
    p.add_argument("--action-dim", type=int, default=4, help="4 = Meta-World; e.g. 6 or 18 for Atari discrete")
    p.add_argument("--cnn-depth", type=int, default=None, help="cnn_channels_multiplier (sheeprl default 48)")
    p.add_argument("--precision", default="32-true", help="fabric precision: 32-true | bf16-mixed | 16-mixed")
    p.add_argument("--compile", action="store_true", help="algo.compile.enabled=True (mode=default on CPU)")
    p.add_argument("--wm-only", action="store_true", help="time only world-model loss + backward + Adam step")
    p.add_argument("--override", action="append", default=[], help="extra hydra override(s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="append the result as one JSON line to this file")
    return p.parse_args()


def main():
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(args.seed)

    import gymnasium as gym
    import hydra
    import numpy as np
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    import sheeprl
    from sheeprl.algos.dreamer_v2 import dreamer_v2 as dv2
    from sheeprl.algos.dreamer_v2.agent import build_agent
    from sheeprl.algos.dreamer_v2.utils import build_optimizer
    from sheeprl.utils.fabric import update
    from sheeprl.utils.utils import dotdict

    overrides = [
        "exp=dreamer_v2",
        "env=dummy",
        "fabric.accelerator=cpu",
        f"fabric.precision={args.precision}",
        f"algo.per_rank_batch_size={args.batch}",
        f"algo.per_rank_sequence_length={args.seq}",
        f"algo.horizon={args.horizon}",
        "algo.cnn_keys.encoder=[rgb]",
        "algo.mlp_keys.encoder=[]",
        "metric.log_level=0",
        f"algo.compile.enabled={args.compile}",
    ]
    if args.compile:
        # reduce-overhead = CUDA graphs; meaningless on CPU
        overrides.append("algo.compile.mode=null")
    if args.cnn_depth is not None:
        overrides.append(f"algo.world_model.encoder.cnn_channels_multiplier={args.cnn_depth}")
    overrides += args.override

    with initialize_config_module(config_module="sheeprl.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    cfg = dotdict(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))

    # as sheeprl's own entry point does (sheeprl/cli.py): no argument validation in torch.distributions (its
    # default, False); with validation on, use_continues=True fails on its gamma-scaled continue targets
    from torch.distributions import Distribution

    Distribution.set_default_validate_args(cfg.distribution.validate_args)

    fabric = hydra.utils.instantiate(cfg.fabric, devices=1, _convert_="all")
    fabric.seed_everything(args.seed)

    H = W = args.image
    obs_space = gym.spaces.Dict({"rgb": gym.spaces.Box(0, 255, (3, H, W), np.uint8)})
    is_continuous = args.action == "continuous"
    actions_dim = (args.action_dim,)

    world_model, actor, critic, target_critic, _player = build_agent(
        fabric, actions_dim, is_continuous, cfg, obs_space
    )
    world_opt = build_optimizer(cfg.algo.world_model.optimizer, world_model.parameters())
    actor_opt = build_optimizer(cfg.algo.actor.optimizer, actor.parameters())
    critic_opt = build_optimizer(cfg.algo.critic.optimizer, critic.parameters())
    world_opt, actor_opt, critic_opt = fabric.setup_optimizers(world_opt, actor_opt, critic_opt)

    n_params = {
        "world_model": sum(p.numel() for p in world_model.parameters()),
        "actor": sum(p.numel() for p in actor.parameters()),
        "critic": sum(p.numel() for p in critic.parameters()),
    }

    L, B = args.seq, args.batch
    g = torch.Generator().manual_seed(args.seed)

    def make_batch():
        # layout of sheeprl's buffer samples: [T, B, ...], float32 (sample_batches calls .float())
        if is_continuous:
            actions = torch.rand(L, B, args.action_dim, generator=g) * 2 - 1
        else:
            idx = torch.randint(0, args.action_dim, (L, B), generator=g)
            actions = torch.nn.functional.one_hot(idx, args.action_dim).float()
        return {
            "rgb": torch.randint(0, 256, (L, B, 3, H, W), generator=g, dtype=torch.uint8).float(),
            "actions": actions,
            "rewards": torch.randn(L, B, 1, generator=g),
            "terminated": torch.zeros(L, B, 1),
            "truncated": torch.zeros(L, B, 1),
            "is_first": torch.zeros(L, B, 1),
        }

    wm_cfg = cfg.algo.world_model

    def wm_only_step(data):
        data["is_first"][0, :] = 1.0
        rec_loss, *_ = dv2.world_model_loss(
            world_model,
            data,
            cnn_keys=tuple(cfg.algo.cnn_keys.encoder),
            mlp_keys=tuple(cfg.algo.mlp_keys.encoder),
            stochastic_size=wm_cfg.stochastic_size,
            discrete_size=wm_cfg.discrete_size,
            recurrent_state_size=wm_cfg.recurrent_model.recurrent_state_size,
            use_continues=bool(wm_cfg.use_continues and world_model.continue_model),
            gamma=cfg.algo.gamma,
            kl_balancing_alpha=wm_cfg.kl_balancing_alpha,
            kl_free_nats=wm_cfg.kl_free_nats,
            kl_free_avg=wm_cfg.kl_free_avg,
            kl_regularizer=wm_cfg.kl_regularizer,
            discount_scale_factor=wm_cfg.discount_scale_factor,
            entropies=False,
        )
        update(fabric, rec_loss, world_opt, wm_cfg.clip_gradients, error_if_nonfinite=False)
        world_opt.zero_grad(set_to_none=True)

    def full_step(data):
        dv2.train(
            fabric, world_model, actor, critic, target_critic,
            world_opt, actor_opt, critic_opt, data, None, cfg, actions_dim,
        )

    step = wm_only_step if args.wm_only else full_step

    load_before = os.getloadavg()
    times, cpu_times = [], []
    for i in range(args.warmup + args.steps):
        data = make_batch()  # data generation is outside the timed region
        c0 = time.process_time()
        t0 = time.perf_counter()
        step(data)
        dt = time.perf_counter() - t0
        dc = time.process_time() - c0  # CPU seconds of this process, summed over its threads
        tag = "warmup" if i < args.warmup else "step"
        print(f"{tag} {i}: {dt:.3f}s wall, {dc:.3f}s cpu", flush=True)
        if i >= args.warmup:
            times.append(dt)
            cpu_times.append(dc)

    res = {
        "what": "sheeprl.dreamer_v2.train (wm+actor+critic)" if not args.wm_only else "sheeprl.dreamer_v2 world_model_loss+update",
        "median_s_per_step": statistics.median(times),
        "mean": statistics.fmean(times),
        "min": min(times),
        "max": max(times),
        # CPU seconds per step (summed over threads) / threads. Only a rough hint: when other processes
        # share the cores, OpenMP threads spin while waiting, so CPU time grows under contention too.
        # On an idle machine the min wall time is the better number.
        "median_cpu_s_per_step": statistics.median(cpu_times),
        "median_cpu_s_per_step_div_threads": statistics.median(cpu_times) / args.threads,
        "wall_s_each": [round(t, 3) for t in times],
        "B": B, "L": L, "horizon": args.horizon, "image": H,
        "threads": args.threads, "precision": args.precision, "compile": args.compile,
        "action": f"{args.action}:{args.action_dim}",
        "cnn_depth": cfg.algo.world_model.encoder.cnn_channels_multiplier,
        "recurrent": cfg.algo.world_model.recurrent_model.recurrent_state_size,
        "latent": f"{wm_cfg.stochastic_size}x{wm_cfg.discrete_size}",
        "params": n_params, "n_timed": len(times), "warmup": args.warmup,
        "torch": torch.__version__, "sheeprl": getattr(sheeprl, "__version__", "?"),
        "python": platform.python_version(), "cpus": os.cpu_count(), "extra_overrides": args.override,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # 1-min load average before/after: > threads means other processes competed for the cores
        "loadavg_before": round(load_before[0], 2), "loadavg_after": round(os.getloadavg()[0], 2),
    }
    print("RESULT " + " ".join(f"{k}={v}" for k, v in res.items() if k in (
        "median_s_per_step", "min", "max", "median_cpu_s_per_step_div_threads", "B", "L", "threads", "precision", "compile", "what")))
    print(json.dumps(res))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    sys.exit(main())
