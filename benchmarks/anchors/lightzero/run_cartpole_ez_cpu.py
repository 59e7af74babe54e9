"""LightZero 0.2.0 EfficientZero on CartPole-v0 on the CPU (run with the LightZero venv's python).

Adapted from the shared anchor (`../shared/anchors/lightzero/run_cartpole_ez_cpu.py`): LightZero's own zoo
config (zoo/classic_control/cartpole/config/cartpole_efficientzero_config.py) with only these changes:

  * policy.cuda = False                 (no GPU)
  * env_manager.type = --env-manager    (zoo default subprocess; `base` keeps the run in one process)
  * the seed (--seed), the experiment directory (--exp-name) and max_env_step (--max-env-step)
  * n_evaluator_episode / evaluator_env_num = --eval-episodes (zoo 3; 8 matches xfer's evaluation)

Learning settings (8 collector envs, 8 episodes per collect, 25 simulations, 100 updates per collect,
batch 256, Adam 3e-3, no reanalyse, eval every 200 updates) are the zoo's.

    python run_cartpole_ez_cpu.py --seed 0 --env-manager base --max-env-step 6000 --exp-name lz_seed0
"""
import argparse
import time

import torch
from zoo.classic_control.cartpole.config.cartpole_efficientzero_config import create_config, main_config


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--env-manager', default='subprocess', choices=['subprocess', 'base'])
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--max-env-step', type=int, default=int(1e5))
    ap.add_argument('--eval-episodes', type=int, default=3)
    ap.add_argument('--exp-name', default=None)
    args = ap.parse_args()

    main_config.policy.cuda = False
    create_config.env_manager.type = args.env_manager
    main_config.env.evaluator_env_num = args.eval_episodes
    main_config.env.n_evaluator_episode = args.eval_episodes
    main_config.policy.evaluator_env_num = args.eval_episodes
    main_config.exp_name = args.exp_name or f'{main_config.exp_name}_cpu_{args.env_manager}_seed{args.seed}'

    print(f'[anchor] start_unix={time.time():.1f} torch={torch.__version__} '
          f'threads={torch.get_num_threads()} env_manager={args.env_manager} seed={args.seed} '
          f'exp_name={main_config.exp_name}', flush=True)
    from lzero.entry import train_muzero
    train_muzero([main_config, create_config], seed=args.seed, model_path=None,
                 max_env_step=args.max_env_step)
    print(f'[anchor] end_unix={time.time():.1f}', flush=True)


if __name__ == '__main__':
    main()
