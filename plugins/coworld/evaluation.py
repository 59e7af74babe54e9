"""Evaluating CoWorld's target agent in the target environment, with the paper's value diagnostics (Fig. 5b).

CoWorld claims its target critic neither over- nor under-estimates the values of its own policy. While the
target agent is evaluated, every step's posterior feature is scored by the target critic v_ξ and by the
(selected) source critic v_ξ', and the true discounted return-to-go of the evaluated policy is computed from
the episode's rewards:

    G_t = Σ_{k ≥ 0} γ^k r_{t+k},

with xfer's convention that r_t is the reward received *with* observation t (r_0 = 0), which is what the
DreamerV2 critic regresses (its λ-return starts with the reward predicted from the state itself). Episodes
end at the time limit without bootstrapping, so G_t of late steps is truncated; compare the start-state
values (``*_start``) or the averages over all visited states. Logged:

- ``coworld/value_estimate``, ``coworld/true_return``, ``coworld/value_bias`` (mean of v_tg − G);
- ``coworld/value_estimate_start``, ``coworld/true_return_start`` (t = 0 only);
- ``coworld/source_value_estimate`` (the source critic on the same target states);
- Fig. 5(b)'s cumulative values over an evaluation episode ("the cumulative value predictions throughout
  500 steps" against the discounted sums of the rewards actually received): ``coworld/cumulative_value``
  = Σ_t v_tg(s_t), ``coworld/cumulative_true_return`` = Σ_t G_t, ``coworld/cumulative_source_value``, each
  the mean over the evaluated episodes;
- the usual ``eval/return``, ``eval/return_std``, ``eval/success``.

Every evaluation also writes the per-step curves for plotting, ``<rundir>/value_curves/eval_<step>.json``:
``{"step", "target_updates", "gamma", "episodes": [{"value", "true_return", "source_value", "reward",
"cumulative_value", "cumulative_true_return"}, ...]}`` (lists over the episode's steps; ``step`` counts
source environment steps, as the metrics do).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from xfer_plugins.coworld.agents import TargetEvalAgent

from xfer.dreamer.behavior import ActorCritic
from xfer.dreamer.loop import EnvEvaluator
from xfer.run.context import RunContext
from xfer.run.evaluate import run_episodes


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = Σ_k γ^k r_{t+k} for every t of one episode's rewards [T]."""
    out = np.zeros(len(rewards), np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        out[t] = running
    return out


class RewardLog(gymnasium.Wrapper):
    """Records each episode's rewards (a new list at every reset)."""

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        self.episodes: list[list[float]] = []

    def reset(self, **kwargs: Any) -> Any:
        self.episodes.append([])
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        result = self.env.step(action)
        self.episodes[-1].append(float(result[1]))
        return result


class ValueProbe:
    """Acts as the evaluated agent and records v_tg and v_src of every posterior it acts from."""

    def __init__(self, agent: TargetEvalAgent, source: ActorCritic | None) -> None:
        self.agent, self.source = agent, source
        self.target_values: list[list[float]] = []
        self.source_values: list[list[float]] = []

    def act(self, obs: Mapping[str, np.ndarray], state: Any, explore: bool) -> tuple[np.ndarray, Any]:
        if state is None or bool(np.asarray(obs.get("is_first", [False]))[0]) or not self.target_values:
            self.target_values.append([])
            self.source_values.append([])
        action, state = self.agent.act(obs, state, explore)
        dreamer = self.agent.agent
        with torch.no_grad():
            feat = dreamer.world_model.rssm.feat(state.latent)
            self.target_values[-1].append(float(dreamer.behavior.value(feat)[0]))
            if self.source is not None:
                self.source_values[-1].append(float(self.source.frozen_value(feat)[0]))
        return action, state


class CoWorldEvaluator(EnvEvaluator):
    """:class:`EnvEvaluator` of the target agent plus the value diagnostics; returns nothing until
    ``ready()`` (before the first target phase the target agent is untrained). ``progress()`` gives the
    (step, target updates) the curves file is named and stamped with."""

    def __init__(self, ctx: RunContext, agent: TargetEvalAgent, env: gymnasium.Env, episodes: int,
                 source: Callable[[], ActorCritic | None], gamma: float, ready: Callable[[], bool],
                 progress: Callable[[], tuple[int, int]] = lambda: (0, 0)) -> None:
        super().__init__(ctx, agent, RewardLog(env), episodes)
        self.source, self.gamma, self.ready, self.progress = source, gamma, ready, progress

    def __call__(self) -> dict[str, float]:
        if not self.ready():
            return {}
        probe = ValueProbe(self.agent, self.source())
        self.env.episodes.clear()
        metrics, _ = run_episodes(probe, self.env, self.episodes, int(self.ctx.rng.integers(2**31)))
        curves = episode_curves(probe, self.env.episodes, self.gamma)
        metrics.update(value_metrics(curves))
        step, updates = self.progress()
        write_curves(self.ctx.rundir / "value_curves" / f"eval_{step:09d}.json",
                     {"step": step, "target_updates": updates, "gamma": self.gamma, "episodes": curves})
        return metrics


Curve = dict[str, list[float]]


def episode_curves(probe: ValueProbe, rewards: list[list[float]], gamma: float) -> list[Curve]:
    """Per evaluated episode, per step t: v_tg(s_t), G_t, v_src(s_t) (empty without a source), the reward
    received with observation t, and the running sums Σ_{τ≤t} v_tg(s_τ) and Σ_{τ≤t} G_τ (Fig. 5b)."""
    curves = []
    for k, episode in enumerate(rewards):
        estimate = np.asarray(probe.target_values[k], np.float64)
        with_obs = np.concatenate([[0.0], episode])  # r_t arrives with observation t
        truth = discounted_returns(with_obs, gamma)[: len(estimate)]
        source = probe.source_values[k] if k < len(probe.source_values) else []
        curves.append({"value": estimate.tolist(), "true_return": truth.tolist(),
                       "source_value": [float(v) for v in source],
                       "reward": with_obs[: len(estimate)].tolist(),
                       "cumulative_value": np.cumsum(estimate).tolist(),
                       "cumulative_true_return": np.cumsum(truth).tolist()})
    return curves


def value_metrics(curves: list[Curve]) -> dict[str, float]:
    """Fig. 5b's comparison over all evaluated episodes (see the module docstring)."""
    value = np.concatenate([c["value"] for c in curves])
    truth = np.concatenate([c["true_return"] for c in curves])
    metrics = {"coworld/value_estimate": float(value.mean()), "coworld/true_return": float(truth.mean()),
               "coworld/value_bias": float((value - truth).mean()),
               "coworld/value_estimate_start": float(np.mean([c["value"][0] for c in curves])),
               "coworld/true_return_start": float(np.mean([c["true_return"][0] for c in curves])),
               "coworld/cumulative_value": float(np.mean([c["cumulative_value"][-1] for c in curves])),
               "coworld/cumulative_true_return": float(np.mean([c["cumulative_true_return"][-1]
                                                                for c in curves]))}
    sources = [c["source_value"] for c in curves if c["source_value"]]
    if sources:
        metrics["coworld/source_value_estimate"] = float(np.concatenate(sources).mean())
        metrics["coworld/cumulative_source_value"] = float(np.mean([np.sum(s) for s in sources]))
    return metrics


def write_curves(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
