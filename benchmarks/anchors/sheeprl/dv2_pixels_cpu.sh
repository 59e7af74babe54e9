#!/bin/bash
# sheeprl 0.8.4 DreamerV2 at exactly the settings of recipes/dreamer_pixels_cpu.yaml (xfer's `cpu` preset):
# DMC cartpole-balance from 64x64 pixels, action repeat 2, 1000 simulator steps per episode, 30k policy steps
# (60k environment steps), 2,500 random policy steps before learning (5k env steps), 100 pretraining updates,
# then 0.2 updates per policy step (one per 10 env steps), batch 16 x 32, CNN depth 16, GRU 200, 16x16
# discrete latents, MLPs 2x256. One torch thread. Checkpoints (models only) every 2,500 policy steps, for
# greedy evaluation afterwards (sheeprl_to_run.py).
# Usage: ANCHOR_VENV=/path/to/venv WORKDIR=/somewhere SEED=0 bash dv2_pixels_cpu.sh
# Critic settings (the recipe's critic_lr and slow_critic_every): CRITIC_LR (default DreamerV2's 8e-5) and
# TARGET_EVERY (updates between target-critic copies, default 100); RUN_NAME names the run directory.
# Another task or schedule (defaults: the recipe above): DOMAIN, TASK, ACTION_REPEAT, POLICY_STEPS (the budget
# in policy steps = environment steps / ACTION_REPEAT), LEARNING_STARTS (random policy steps),
# REPLAY_RATIO (updates per policy step = ACTION_REPEAT / the recipe's train_every), CKPT_EVERY (policy steps).
set -euo pipefail
cd "$WORKDIR"
export MUJOCO_GL=egl OMP_NUM_THREADS=1
date -u +"START %Y-%m-%dT%H:%M:%SZ %s"
"$ANCHOR_VENV/bin/sheeprl" exp=dreamer_v2 env=dmc env.wrapper.domain_name="${DOMAIN:-cartpole}" env.wrapper.task_name="${TASK:-balance}" \
  env.wrapper.from_pixels=True env.wrapper.from_vectors=False env.screen_size=64 env.num_envs=1 \
  env.action_repeat="${ACTION_REPEAT:-2}" env.max_episode_steps=-1 env.capture_video=False \
  algo.cnn_keys.encoder=[rgb] algo.mlp_keys.encoder=[] \
  algo.per_rank_batch_size=16 algo.per_rank_sequence_length=32 \
  algo.world_model.encoder.cnn_channels_multiplier=16 \
  algo.world_model.recurrent_model.recurrent_state_size=200 \
  algo.world_model.transition_model.hidden_size=200 algo.world_model.representation_model.hidden_size=200 \
  algo.world_model.stochastic_size=16 algo.world_model.discrete_size=16 \
  algo.dense_units=256 algo.mlp_layers=2 \
  algo.total_steps="${POLICY_STEPS:-30000}" algo.learning_starts="${LEARNING_STARTS:-2500}" \
  algo.per_rank_pretrain_steps=100 algo.replay_ratio="${REPLAY_RATIO:-0.2}" \
  algo.critic.optimizer.lr="${CRITIC_LR:-8e-5}" \
  algo.critic.per_rank_target_network_update_freq="${TARGET_EVERY:-100}" \
  buffer.size=100000 buffer.memmap=False buffer.checkpoint=False checkpoint.every="${CKPT_EVERY:-2500}" checkpoint.save_last=True checkpoint.keep_last=20 \
  fabric.accelerator=cpu seed="${SEED:-0}" num_threads=1 metric.log_every=1000 \
  root_dir=pixels run_name="${RUN_NAME:-cartpole_balance}_seed${SEED:-0}"
date -u +"END %Y-%m-%dT%H:%M:%SZ %s"
