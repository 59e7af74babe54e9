"""Training targets: value prefixes, n-step values and reanalysed policies (Ye et al. 2021, Sec. 4.2-4.3).

For a sampled position t and unroll steps k = 0..K (K = 5):
- value prefix (EfficientZero Sec. 4.2): the sum of rewards r_{t+k} since the last LSTM reset, resets
  every ``lstm_horizon`` steps counted from t (EZ code's ``_prepare_reward_value``);
- value (XTRA App. A): z_{t+k} = sum_{i<n} gamma^i r_{t+k+i} + gamma^n v_{t+k+n}, n = 5, truncated at the
  end of the history, with no bootstrap past a terminal state and 0 for k past the end; with the
  off-policy correction of EfficientZero (Sec. 4.3; ``reanalyze_worker.py``) n shrinks for older data:
  n = clip(5 - floor(age / (0.3 * training_steps)), 1, 5), age counted in transitions stored since;
- policy: the stored search visit distribution, or reanalysed (MuZero Reanalyze) by a fresh MCTS.

Which network bootstraps values and reanalyses policies is a parameter (:class:`TargetSource`): the
learner's target network for EfficientZero, or a frozen teacher for XTRA's distillation (Sec. 3.1), in
which case ``policy_mode`` picks the teacher's MCTS visits or its predicted policy and ``value_mode`` its
n-step bootstrapped or directly predicted values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.mcts import masked_softmax, run_mcts
from xfer.muzero.networks import EfficientZeroNet, Inference
from xfer.muzero.replay import GameHistory, PrioritizedReplay, SampledPositions


@dataclass
class TargetSource:
    """The network that produces value / policy targets: a target network or a frozen teacher."""

    net: EfficientZeroNet
    value_mode: Literal["nstep", "network"] = "nstep"
    policy_mode: Literal["mcts", "network", "stored"] = "mcts"
    mcts_noise: bool = True  # EZ code adds root noise when reanalysing


@dataclass
class TrainBatch:
    obs: torch.Tensor  # uint8 [B, (stack + K) * c, H, W]: frames t-stack+1 .. t+K (float [B, (stack+K) * D])
    actions: torch.Tensor  # long [B, K]
    mask: torch.Tensor  # float [B, K]: 1 while t + k is inside the history
    legal: torch.Tensor  # bool [B, A]
    target_value: torch.Tensor  # float [B, K + 1]
    target_prefix: torch.Tensor  # float [B, K]
    target_policy: torch.Tensor  # float [B, K + 1, A]
    weights: torch.Tensor  # float [B] importance weights
    game_ids: np.ndarray
    steps: np.ndarray
    task_ids: np.ndarray


def value_prefix_targets(rewards: np.ndarray, t: int, unroll: int, horizon: int) -> np.ndarray:
    """Prefix k = r_s + ... + r_{t+k}, s the last reset (every ``horizon`` steps from t); held past the end"""
    out = np.zeros(unroll + 1, dtype=np.float32)
    prefix = 0.0
    for k in range(unroll + 1):
        if k % horizon == 0:
            prefix = 0.0
        if t + k < len(rewards):
            prefix += float(rewards[t + k])
        out[k] = prefix
    return out


def bootstrap_indices(length: int, t: int, unroll: int, td_steps: int) -> np.ndarray:
    """State index whose value bootstraps z_{t+k}: t + k + n, truncated at the history's end."""
    return np.minimum(t + np.arange(unroll + 1) + td_steps, length)


def corrected_td_steps(ages: np.ndarray, cfg: EfficientZeroConfig) -> np.ndarray:
    """TD horizon per position: ``td_steps`` minus one per ``auto_td_ratio * training_steps`` transitions
    stored since, at least 1 (EZ code's ``auto_td_steps``); ``td_steps`` without the correction."""
    ages = np.asarray(ages, np.int64)
    if not cfg.off_policy_correction:
        return np.full(ages.shape, cfg.td_steps, np.int64)
    delta = np.floor(ages / (cfg.auto_td_ratio * cfg.training_steps)).astype(np.int64)
    return np.clip(cfg.td_steps - delta, 1, cfg.td_steps)


def nstep_parts(rewards: np.ndarray, t: int, unroll: int, td_steps: int, gamma: float,
                terminal: bool) -> tuple[np.ndarray, np.ndarray]:
    """z_{t+k} = base_k + scale_k · v_k, in float64: the discounted reward sums and γ^n, with scale 0 past a
    terminal state and both 0 for k past the end (the network-free half of :func:`nstep_value_targets`).
    The history's last state (t + k = length) is a target the loss uses: 0 when it is terminal, its own
    value v(s_length) when the history was cut (a segment's end, a time limit), as EfficientZero's padded
    segments give."""
    length = len(rewards)
    boot_ix = bootstrap_indices(length, t, unroll, td_steps)
    base, scale = np.zeros(unroll + 1), np.zeros(unroll + 1)
    for k in range(unroll + 1):
        start = t + k
        if start > length or (start == length and terminal):
            continue
        end = int(boot_ix[k])
        base[k] = float(np.sum(rewards[start:end] * gamma ** np.arange(end - start)))
        if not (end == length and terminal):
            scale[k] = gamma ** (end - start)
    return base, scale


def nstep_value_targets(rewards: np.ndarray, t: int, unroll: int, td_steps: int, gamma: float,
                        bootstrap_values: np.ndarray, terminal: bool) -> np.ndarray:
    """z_{t+k} for k = 0..K given v at :func:`bootstrap_indices` (XTRA App. A; MuZero Eq. 4)."""
    base, scale = nstep_parts(rewards, t, unroll, td_steps, gamma, terminal)
    return (base + scale * np.asarray(bootstrap_values, np.float64)).astype(np.float32)


def _chunked(net: EfficientZeroNet, obs: np.ndarray, chunk: int, device: torch.device) -> list[Inference]:
    """Initial inference of reanalyse's observations, ``chunk`` at a time (bf16 with ``amp``, see
    :meth:`EfficientZeroNet.initial_inference`'s ``large_batch``)."""
    return [net.initial_inference(torch.as_tensor(obs[i:i + chunk], device=device), large_batch=True)
            for i in range(0, len(obs), chunk)]


def _network_values(net: EfficientZeroNet, obs: np.ndarray, chunk: int) -> np.ndarray:
    outputs = _chunked(net, obs, chunk, next(net.parameters()).device)
    return np.concatenate([o.value.cpu().numpy() for o in outputs])


def _network_policies(source: TargetSource, obs: np.ndarray, legal: np.ndarray, cfg: EfficientZeroConfig,
                      rng: np.random.Generator, chunk: int) -> np.ndarray:
    """Visit distributions of a fresh search (MuZero Reanalyze) or the masked predicted policy."""
    net = source.net
    device = next(net.parameters()).device
    out = []
    for i, root in enumerate(_chunked(net, obs, chunk, device)):
        mask = legal[i * chunk:i * chunk + chunk]
        if source.policy_mode == "mcts":
            out.append(run_mcts(net, root, mask, cfg, rng, add_noise=source.mcts_noise).policy())
        else:
            out.append(masked_softmax(root.policy_logits, torch.as_tensor(mask, device=device)).cpu().numpy())
    return np.concatenate(out)


def _inputs(game: GameHistory, t: int, cfg: EfficientZeroConfig,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observation window, unroll actions (random legal ones past the end, as EZ code) and mask."""
    K, length = cfg.unroll_steps, len(game)
    obs = game.frame_window(t - cfg.frame_stack + 1, t + K)
    actions = rng.choice(np.flatnonzero(game.legal_mask), size=K)
    inside = min(K, length - t)
    actions[:inside] = game.actions[t:t + inside]
    mask = (np.arange(K) < inside).astype(np.float32)
    return obs, actions, mask


@dataclass
class BatchJob:
    """A batch gathered from the replay, waiting for its network part (:func:`network_part`).

    The network-free targets are done: z = ``value_base`` + ``value_scale`` · v, with v the source's value
    at ``value_obs`` (n-step: the discounted rewards and γ^n, 0 past a terminal state or the history's
    end; ``value_mode: network``: 0 and 1 inside the history), and the stored policies, whose rows
    ``reanalyse_rows``/``reanalyse_cols`` a fresh search on ``reanalyse_obs`` replaces.
    """

    obs_window: np.ndarray
    actions: np.ndarray
    mask: np.ndarray
    legal: np.ndarray
    prefix: np.ndarray
    weights: np.ndarray
    game_ids: np.ndarray
    steps: np.ndarray
    task_ids: np.ndarray
    value_obs: np.ndarray
    value_base: np.ndarray
    value_scale: np.ndarray
    policies: np.ndarray
    reanalyse_obs: np.ndarray
    reanalyse_legal: np.ndarray
    reanalyse_rows: np.ndarray
    reanalyse_cols: np.ndarray


def make_batch(replay: PrioritizedReplay, positions: SampledPositions, cfg: EfficientZeroConfig,
               source: TargetSource, rng: np.random.Generator, device: str | torch.device = "cpu",
               chunk: int = 256, ages: np.ndarray | None = None) -> TrainBatch:
    """Inputs and targets for the sampled positions; values and policies from ``source.net`` in eval mode.

    ``ages`` (:meth:`PrioritizedReplay.ages`) turns on the off-policy correction of the TD horizon
    (:func:`corrected_td_steps`); without them every position uses ``td_steps``. The three parts
    (:func:`gather_job`, :func:`network_part`, :func:`finish_job`) also run apart, the network part in
    another process (:mod:`xfer.muzero.batch_workers`).
    """
    job = gather_job(replay, positions, cfg, source, rng, ages)
    values, policies = network_part(source, cfg, rng, job.value_obs, job.reanalyse_obs, job.reanalyse_legal,
                                    chunk)
    return finish_job(job, values, policies, device)


def gather_job(replay: PrioritizedReplay, positions: SampledPositions, cfg: EfficientZeroConfig,
               source: TargetSource, rng: np.random.Generator, ages: np.ndarray | None = None) -> BatchJob:
    """Everything of a batch that needs no network: inputs, prefixes, the n-step sums, stored policies."""
    td = np.full(len(positions.steps), cfg.td_steps) if ages is None else corrected_td_steps(ages, cfg)
    K, n_actions = cfg.unroll_steps, cfg.n_actions
    games = [replay.game(int(g)) for g in positions.game_ids]
    steps = positions.steps.astype(np.int64)
    inputs = [_inputs(g, int(t), cfg, rng) for g, t in zip(games, steps, strict=True)]
    legal = np.stack([g.legal_mask for g in games]).astype(bool)
    prefix = np.stack([value_prefix_targets(g.rewards, int(t), K, cfg.lstm_horizon)
                       for g, t in zip(games, steps, strict=True)])

    # One stacked observation per (position, k): values bootstrap from them, policies are reanalysed on them.
    pairs = list(zip(games, steps.tolist(), strict=True))
    base, scale = np.zeros((len(games), K + 1)), np.zeros((len(games), K + 1))  # float64, as the sums
    if source.value_mode == "nstep":
        value_ix = [bootstrap_indices(len(g), t, K, int(n)) for (g, t), n in zip(pairs, td, strict=True)]
        for b, (g, t) in enumerate(pairs):
            base[b], scale[b] = nstep_parts(g.rewards, t, K, int(td[b]), cfg.discount, g.terminal)
    else:
        value_ix = [np.minimum(t + np.arange(K + 1), len(g)) for g, t in pairs]
        for b, (g, t) in enumerate(pairs):
            scale[b] = t + np.arange(K + 1) < len(g)
    value_obs = np.stack([g.stacked_obs(int(i), cfg.frame_stack)
                          for g, ix in zip(games, value_ix, strict=True) for i in ix])

    policies = np.zeros((len(games), K + 1, n_actions), dtype=np.float32)
    for b, (g, t) in enumerate(pairs):
        inside = min(K + 1, len(g) - t)
        policies[b, :inside] = g.policies[t:t + inside]
    n_reanalyse = 0 if source.policy_mode == "stored" else int(round(cfg.reanalyse_policy_ratio * len(games)))
    ix = [(b, k) for b in range(n_reanalyse) for k in range(K + 1) if steps[b] + k < len(games[b])]
    policies[:n_reanalyse] = 0.0
    rows, cols = (np.array(ix, dtype=np.int64).T if ix else (np.zeros(0, np.int64), np.zeros(0, np.int64)))
    frame_shape = value_obs.shape[1:]
    reanalyse_obs = (np.stack([games[b].stacked_obs(int(steps[b]) + k, cfg.frame_stack) for b, k in ix]) if ix
                     else np.zeros((0, *frame_shape), value_obs.dtype))
    return BatchJob(
        obs_window=np.stack([i[0] for i in inputs]), actions=np.stack([i[1] for i in inputs]),
        mask=np.stack([i[2] for i in inputs]), legal=legal, prefix=prefix[:, :K].astype(np.float32),
        weights=np.asarray(positions.weights, np.float32), game_ids=positions.game_ids, steps=steps,
        task_ids=np.array([g.task_id for g in games]), value_obs=value_obs, value_base=base,
        value_scale=scale, policies=policies, reanalyse_obs=reanalyse_obs, reanalyse_legal=legal[rows],
        reanalyse_rows=rows, reanalyse_cols=cols)


def network_part(source: TargetSource, cfg: EfficientZeroConfig, rng: np.random.Generator,
                 value_obs: np.ndarray, reanalyse_obs: np.ndarray, reanalyse_legal: np.ndarray,
                 chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The source network's values at ``value_obs`` [N] and its policies at the reanalysed positions
    [R, A] (a fresh search, or its predicted policy), with the network in eval mode."""
    was_training = source.net.training
    source.net.eval()
    try:
        values = _network_values(source.net, value_obs, chunk)
        if len(reanalyse_obs):
            fresh = _network_policies(source, reanalyse_obs, reanalyse_legal, cfg, rng, chunk)
        else:
            fresh = np.zeros((0, cfg.n_actions), np.float32)
        return values.astype(np.float32), fresh.astype(np.float32)
    finally:
        source.net.train(was_training)


def values_of(job: BatchJob, values: np.ndarray) -> np.ndarray:
    """z = base + scale · v in float64 (as :func:`nstep_value_targets`), then float32."""
    net = np.asarray(values, np.float64).reshape(job.value_base.shape)
    return (job.value_base + job.value_scale * net).astype(np.float32)


def finish_job(job: BatchJob, values: np.ndarray, fresh: np.ndarray,
               device: str | torch.device = "cpu") -> TrainBatch:
    """The train batch from a gathered job and its network part (``values`` flat or [B, K + 1])."""
    device = torch.device(device)
    policies = job.policies.copy()
    policies[job.reanalyse_rows, job.reanalyse_cols] = fresh

    def as_t(x: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x), dtype=dtype, device=device)

    obs = job.obs_window
    return TrainBatch(
        obs=as_t(obs, torch.uint8 if obs.dtype == np.uint8 else torch.float32),
        actions=as_t(job.actions, torch.long), mask=as_t(job.mask, torch.float32),
        legal=as_t(job.legal, torch.bool),
        target_value=as_t(values_of(job, values), torch.float32),
        target_prefix=as_t(job.prefix, torch.float32), target_policy=as_t(policies, torch.float32),
        weights=as_t(job.weights, torch.float32), game_ids=job.game_ids, steps=job.steps,
        task_ids=job.task_ids)
