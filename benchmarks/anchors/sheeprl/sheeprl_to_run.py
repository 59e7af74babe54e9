"""A sheeprl DreamerV2 run as an xfer run directory, with greedy evaluations of its checkpoints.

Runs in the sheeprl venv:

    python sheeprl_to_run.py LOG_DIR RUNDIR --seed S [--episodes 5] [--task cartpole-balance]

LOG_DIR is sheeprl's ``logs/runs/<root_dir>/<run_name>/version_0`` (it holds ``config.yaml``, the
TensorBoard file and ``checkpoint/ckpt_<policy step>_0.ckpt``). Every checkpoint is rebuilt with sheeprl's
own ``build_agent`` and played greedily (``player.get_actions(greedy=True)``, as sheeprl's ``test``) for
``--episodes`` episodes in sheeprl's own environment stack (its ``make_env``: DMC wrapper, action repeat),
episode k reset with seed ``1000 + k``. Writes RUNDIR/metrics.jsonl (one row per checkpoint: ``step`` and
``env_steps`` = policy steps × action repeat, ``eval/return``, ``eval/return_std``, ``eval/episodes``; and one
row per logged training return, ``train/return`` from sheeprl's ``Rewards/rew_avg``), RUNDIR/recipe.yaml
(``method: sheeprl_dreamer_v2``, seed, task) and RUNDIR/run.json. Rows are sorted by step.
"""
import argparse
import glob
import os
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from xfer_run_dir import write_run  # noqa: E402


def evaluate_checkpoint(path, cfg, episodes):
    import gymnasium as gym
    from lightning import Fabric
    from sheeprl.algos.dreamer_v2.agent import build_agent
    from sheeprl.algos.dreamer_v2.utils import prepare_obs
    from sheeprl.utils.env import make_env

    fabric = Fabric(accelerator="cpu", devices=1)
    state = torch.load(path, map_location="cpu", weights_only=False)
    env = make_env(cfg, cfg.seed, 0, None, "test", vector_env_idx=0)()
    space = env.action_space
    continuous = isinstance(space, gym.spaces.Box)
    actions_dim = tuple(space.shape if continuous else [space.n])
    *_, player = build_agent(fabric, actions_dim, continuous, cfg, env.observation_space,
                             state["world_model"], state["actor"])
    returns = []
    for k in range(episodes):
        obs = env.reset(seed=1000 + k)[0]
        player.num_envs = 1
        player.init_states()
        done, total = False, 0.0
        while not done:
            with torch.no_grad():
                torch_obs = prepare_obs(fabric, obs, cnn_keys=cfg.algo.cnn_keys.encoder)
                actions = player.get_actions(torch_obs, True, {})
            act = torch.stack(actions, -1).cpu().numpy() if continuous else \
                torch.stack([a.argmax(-1) for a in actions], -1).cpu().numpy()
            obs, reward, terminated, truncated, _ = env.step(act.reshape(env.action_space.shape))
            done = terminated or truncated
            total += float(reward)
        returns.append(total)
    env.close()
    return returns


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log_dir")
    ap.add_argument("rundir")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--episodes", type=int, default=5)
    ap.add_argument("--task", default="cartpole-balance")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from omegaconf import OmegaConf
    from sheeprl.utils.utils import dotdict
    saved = OmegaConf.load(os.path.join(args.log_dir, "config.yaml"))
    cfg = dotdict(OmegaConf.to_container(saved, resolve=True))
    repeat = int(cfg.env.action_repeat)
    rows = []
    paths = glob.glob(os.path.join(args.log_dir, "checkpoint", "ckpt_*_0.ckpt"))
    for policy_step, path in sorted((int(re.search(r"ckpt_(\d+)_", p).group(1)), p) for p in paths):
        returns = evaluate_checkpoint(path, cfg, args.episodes)
        rows.append({"step": policy_step * repeat, "env_steps": policy_step * repeat,
                     "eval/return": float(np.mean(returns)), "eval/return_std": float(np.std(returns)),
                     "eval/episodes": float(args.episodes)})
        print(f"{os.path.basename(path)}: {np.mean(returns):.1f} ± {np.std(returns):.1f}", flush=True)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    for fn in sorted(glob.glob(os.path.join(args.log_dir, "events*"))):
        ea = EventAccumulator(fn, size_guidance={"scalars": 0})
        ea.Reload()
        if "Rewards/rew_avg" in ea.Tags()["scalars"]:
            rows += [{"step": e.step * repeat, "env_steps": e.step * repeat, "train/return": float(e.value)}
                     for e in ea.Scalars("Rewards/rew_avg")]
    rows.sort(key=lambda r: r["step"])
    write_run(args.rundir, rows, "sheeprl_dreamer_v2", args.seed, "dmc", args.task, args.log_dir)
    print(f"{len(rows)} rows -> {args.rundir}")


if __name__ == "__main__":
    main()
