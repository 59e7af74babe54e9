"""Value diagnostics of an evaluated Dreamer agent: its critic against the true returns (CoWorld Fig. 5b).

CoWorld claims its target critic neither over- nor under-estimates the values of its own policy, where
offline DreamerV2 overestimates. :class:`ValueEvaluator` measures this for any Dreamer agent (``dreamer``
in every mode, ``coworld``'s target agent): while the agent is evaluated, every step's posterior feature is
scored by its critic v_ξ (and, for CoWorld, by the selected source critic v_ξ'), and the true discounted
return-to-go of the evaluated policy is computed from the episode's rewards:

    G_t = Σ_{k ≥ 0} γ^k r_{t+k},

with xfer's convention that r_t is the reward received *with* observation t (r_0 = 0), which is what the
DreamerV2 critic regresses (its λ-return starts with the reward predicted from the state itself). Episodes
end at the time limit without bootstrapping, so G_t of late steps is truncated; compare the start-state
values (``*_start``) or the averages over all visited states. Logged, the same names for every method so
``xfer compare --metric value/bias`` can set them side by side:

- ``value/estimate``, ``value/true_return``, ``value/bias`` (mean of v − G);
- ``value/estimate_start``, ``value/true_return_start`` (t = 0 only);
- ``value/source_estimate`` (CoWorld: the source critic on the same target states);
- Fig. 5(b)'s cumulative values over an evaluation episode ("the cumulative value predictions throughout
  500 steps" against the discounted sums of the rewards actually received): ``value/cumulative``
  = Σ_t v(s_t), ``value/cumulative_true_return`` = Σ_t G_t, ``value/cumulative_source``, each the mean over
  the evaluated episodes;
- the usual ``eval/return``, ``eval/return_std``, ``eval/success``.

Every evaluation also writes the per-step curves for plotting, ``<rundir>/value_curves/eval_<step>.json``:
``{"step", "gamma", "episodes": [{"value", "true_return", "source_value", "reward", "cumulative_value",
"cumulative_true_return"}, ...], ...}`` (lists over the episode's steps; ``step`` is the loop's step, as in
the metrics; CoWorld adds ``target_updates``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch

from xfer.dreamer.behavior import ActorCritic
from xfer.dreamer.loop import EnvEvaluator, EvalAgent
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
    """Acts as the evaluated agent (an :class:`~xfer.dreamer.loop.EvalAgent`) and records its critic's value
    and the source critic's (when there is one) of every posterior it acts from."""

    def __init__(self, agent: EvalAgent, source: ActorCritic | None) -> None:
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


class ValueEvaluator(EnvEvaluator):
    """:class:`EnvEvaluator` plus the value diagnostics of the module docstring. ``source`` gives the source
    critic to score too (None: none); nothing is returned until ``ready()`` (CoWorld: before the first
    target phase the target agent is untrained); ``stamp()`` gives counters (CoWorld: ``target_updates``)
    written into each curves file and logged with the evaluation, so curves can be read against them
    (``xfer compare --x target_updates,updates``)."""

    def __init__(self, ctx: RunContext, agent: EvalAgent, env: gymnasium.Env, episodes: int, gamma: float,
                 source: Callable[[], ActorCritic | None] = lambda: None,
                 ready: Callable[[], bool] = lambda: True,
                 stamp: Callable[[], dict[str, Any]] = dict) -> None:
        super().__init__(ctx, agent, RewardLog(env), episodes)
        self.source, self.gamma, self.ready, self.stamp = source, gamma, ready, stamp

    def __call__(self, step: int = 0) -> dict[str, float]:
        if not self.ready():
            return {}
        probe = ValueProbe(self.agent, self.source())
        self.env.episodes.clear()
        metrics, _ = run_episodes(probe, self.env, self.episodes, int(self.ctx.rng.integers(2**31)))
        curves = episode_curves(probe, self.env.episodes, self.gamma)
        metrics.update(value_metrics(curves))
        stamp = self.stamp()
        write_curves(self.ctx.rundir / "value_curves" / f"eval_{step:09d}.json",
                     {"step": step, **stamp, "gamma": self.gamma, "episodes": curves})
        return {**metrics, **stamp}


Curve = dict[str, list[float]]


def episode_curves(probe: ValueProbe, rewards: list[list[float]], gamma: float) -> list[Curve]:
    """Per evaluated episode, per step t: v(s_t), G_t, v_src(s_t) (empty without a source), the reward
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
    metrics = {"value/estimate": float(value.mean()), "value/true_return": float(truth.mean()),
               "value/bias": float((value - truth).mean()),
               "value/estimate_start": float(np.mean([c["value"][0] for c in curves])),
               "value/true_return_start": float(np.mean([c["true_return"][0] for c in curves])),
               "value/cumulative": float(np.mean([c["cumulative_value"][-1] for c in curves])),
               "value/cumulative_true_return": float(np.mean([c["cumulative_true_return"][-1]
                                                              for c in curves]))}
    sources = [c["source_value"] for c in curves if c["source_value"]]
    if sources:
        metrics["value/source_estimate"] = float(np.concatenate(sources).mean())
        metrics["value/cumulative_source"] = float(np.mean([np.sum(s) for s in sources]))
    return metrics


def write_curves(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
