"""Is a Dreamer run's world model right, and is its actor using it? Numbers instead of a video.

    python benchmarks/dreamer_model_check.py RUNDIR [--checkpoint PATH] [--horizon 40] [--seed 5]

(a dreamer run: its checkpoints hold one DreamerV2 agent)

From one real start (5 observed frames after a reset with ``--seed``), for a few action sequences (the
uniformly random one the environment actually got, constant +1, −1 and 0 on every action entry), prints the
reward the world model predicts open loop next to the reward the simulator gives for the same actions
(the simulator is reset to the same seed and replays the same first frames, so both start from one state).
Then plays the greedy actor for ``--horizon`` steps (and one imagination horizon more) and prints its
return, its mean |action| and, from three points of that episode, what the model imagines the actor will
earn over one imagination horizon next to what the simulator gave.

A world model that predicts these rewards well but an actor that earns little points at behaviour learning
(too few updates, a weak critic), not at the model. Continuous actions only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from xfer.envs.make import make_env
from xfer.run.evaluate import load_run_agent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rundir", type=Path)
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--horizon", type=int, default=40)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--context", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    run = load_run_agent(args.checkpoint or args.rundir, "cpu", Console(quiet=True))
    agent, recipe = run.agent.agent, run.recipe
    env = make_env(recipe.target.suite, recipe.target.task, recipe.env_for(recipe.target), args.seed,
                   registry=run.registry)
    wm, rssm, behavior = agent.world_model, agent.world_model.rssm, agent.behavior
    shape, ctx, horizon = env.action_space.shape, args.context, args.horizon
    rng = np.random.default_rng(args.seed)
    random_actions = rng.uniform(-1, 1, size=(ctx + horizon, *shape)).astype(np.float32)

    def real_rewards(actions: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        obs, _ = env.reset(seed=args.seed)
        frames, rewards = [obs["image"]], []
        for action in actions:
            obs, reward, *_ = env.step(action)
            frames.append(obs["image"])
            rewards.append(reward)
        return frames, np.asarray(rewards)

    frames, _ = real_rewards(random_actions[: ctx - 1])
    led_to = np.concatenate([np.zeros_like(random_actions[:1]), random_actions[: ctx - 1]])
    first = np.zeros((1, ctx), bool)
    first[0, 0] = True
    with torch.no_grad():
        out = wm.observe(agent.to_tensors({"image": np.stack(frames)[None], "action": led_to[None],
                                           "is_first": first}))
        start = out.post.map(lambda x: x[:, -1])
        print(f"open loop from step {ctx - 1} ({horizon} steps): model vs simulator, sum of rewards")
        for name, tail in [("random", random_actions[ctx - 1:ctx - 1 + horizon]),
                           ("+1", np.ones((horizon, *shape), np.float32)),
                           ("-1", -np.ones((horizon, *shape), np.float32)),
                           ("0", np.zeros((horizon, *shape), np.float32))]:
            state, predicted = start, []
            for action in tail:
                state = rssm.img_step(state, torch.as_tensor(action)[None])
                predicted.append(float(wm.reward(rssm.feat(state))))
            _, real = real_rewards(np.concatenate([random_actions[: ctx - 1], tail]))
            real = real[ctx - 1:]
            print(f"  {name:>6}: model {sum(predicted):7.1f}  simulator {real.sum():7.1f}  "
                  f"|error| per step {np.abs(np.asarray(predicted) - real).mean():.3f}")

        obs, _ = env.reset(seed=args.seed)
        state, actions, rewards, imagined = None, [], [], {}
        for t in range(horizon + behavior.cfg.horizon):
            action, state = agent.policy({k: np.asarray(v)[None] for k, v in obs.items()}, state, False)
            if t in (0, horizon // 2, horizon - 1):
                latent, total = state.latent, 0.0
                for _ in range(behavior.cfg.horizon):
                    actor_out = behavior.actor_forward(rssm.feat(latent), None)
                    latent = rssm.img_step(latent, behavior.dist(actor_out).mode())
                    total += float(wm.reward(rssm.feat(latent)))
                imagined[t] = total
            actions.append(action.numpy()[0])
            obs, reward, *_ = env.step(action.numpy()[0])
            rewards.append(reward)
    rewards_arr = np.asarray(rewards)
    print(f"greedy actor, {horizon} steps: return {rewards_arr[:horizon].sum():.1f}, mean |action| "
          f"{np.abs(np.stack(actions[:horizon])).mean():.2f}")
    for t, total in imagined.items():
        real = rewards_arr[t:t + behavior.cfg.horizon].sum()
        print(f"  from step {t}: model imagines {total:.1f} over {behavior.cfg.horizon} steps, "
              f"simulator gave {real:.1f}")
    env.close()


if __name__ == "__main__":
    main()
