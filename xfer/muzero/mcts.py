"""Batched, array-based MCTS for EfficientZero (MuZero Appendix B; Ye et al. 2021, Sec. 4.2 and App. A).

All B trees live in preallocated NumPy arrays indexed [tree, node(, action)]; node 0 is the root and
simulation s creates node s + 1 in every tree, so the latent and LSTM states of all trees are stored as
one torch pool [node, tree, ...] and the leaves of all trees are evaluated by a single
``recurrent_inference`` call per simulation. Selection and backup walk the B paths in lockstep: the
Python work per simulation is O(depth) vector operations over the whole batch, never a loop over trees
or nodes.

Rules, as MuZero / EfficientZero define them:
- pUCT (MuZero Eq. 2): score = Q_norm(s, a) + P(s, a) * sqrt(N(s)) / (1 + N(s, a))
  * (c1 + log((N(s) + c2 + 1) / c2)), c1 = 1.25, c2 = 19652.
- Q(s, a) = r(s, a) + gamma * V(s'), where the reward is the difference of the value prefixes of child and
  parent, or the child's prefix itself when the parent's LSTM state was reset (EfficientZero Sec. 4.2;
  the LSTM is reset every ``lstm_horizon`` depths, as in EZ code).
- Q is min-max normalised per tree over the values seen in backups, with EZ code's floor
  ``value_delta_max`` on the range and clipping to [0, 1]; unvisited children score the parent's mean Q
  (EZ code).
- Dirichlet(0.3) noise mixed with fraction 0.25 into the root priors only.
- Illegal actions (per-tree mask over the full action head) get prior 0 and score -inf: never visited.
- Deviation from EZ code: the root counts its own expansion as one visit carrying the network value
  (AlphaZero style) instead of a visit with value 0, so root values are not biased towards zero.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.networks import Inference, LstmState

TIE_EPS = 1e-6


class RecurrentModel(Protocol):
    """Anything that can step a batch of latents: the network, or a hand-built model in tests."""

    def recurrent_inference(self, latent: torch.Tensor, hidden: LstmState, action: torch.Tensor) -> Inference:
        ...


@dataclass
class SearchResult:
    visit_counts: np.ndarray  # [B, A] visits of the root's children; sums to the simulation count
    root_values: np.ndarray  # [B] mean backed-up value of the root
    root_priors: np.ndarray  # [B, A] root priors after noise
    network_seconds: float  # time spent inside recurrent_inference
    total_seconds: float
    trees: SearchTrees  # the node statistics, for inspection

    def policy(self, temperature: float = 1.0) -> np.ndarray:
        """Visit distribution N^(1/T) / sum, the policy target (MuZero Appendix D)."""
        counts = self.visit_counts.astype(np.float64) ** (1.0 / temperature)
        return counts / counts.sum(axis=1, keepdims=True)

    def sample_actions(self, rng: np.random.Generator, temperature: float = 1.0) -> np.ndarray:
        """One action per tree drawn from :meth:`policy` (vectorised inverse-CDF sampling)."""
        cdf = np.cumsum(self.policy(temperature), axis=1)
        draws = rng.random((cdf.shape[0], 1)) * cdf[:, -1:]
        return np.minimum((cdf < draws).sum(axis=1), cdf.shape[1] - 1)


def masked_softmax(logits: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits.float().masked_fill(~legal, float("-inf")), dim=-1)


class SearchTrees:
    """Node statistics of B trees in [B, max_nodes(, A)] arrays."""

    def __init__(self, batch: int, max_nodes: int, legal: np.ndarray, cfg: EfficientZeroConfig) -> None:
        n_actions = legal.shape[1]
        self.cfg = cfg
        self.legal = legal
        self.rows = np.arange(batch)
        self.children = np.full((batch, max_nodes, n_actions), -1, dtype=np.int64)
        self.prior = np.zeros((batch, max_nodes, n_actions))
        self.visits = np.zeros((batch, max_nodes))
        self.value_sum = np.zeros((batch, max_nodes))
        self.prefix = np.zeros((batch, max_nodes))
        self.reset = np.zeros((batch, max_nodes), dtype=bool)
        self.depth = np.zeros((batch, max_nodes), dtype=np.int64)
        self.q_min = np.full(batch, np.inf)
        self.q_max = np.full(batch, -np.inf)
        self.path = np.zeros((batch, max_nodes + 1), dtype=np.int64)
        self.path_len = np.ones(batch, dtype=np.int64)

    def normalise(self, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Soft min-max of EZ code: range floored at value_delta_max, raw value before any range exists."""
        lo, hi = self.q_min[rows, None], self.q_max[rows, None]
        delta = hi - lo
        scaled = (q - lo) / np.maximum(delta, self.cfg.value_delta_max)
        return np.clip(np.where(delta > 0, scaled, q), 0.0, 1.0)

    def select(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Descend all trees in lockstep by pUCT; returns the leaf's parent node and action per tree."""
        cfg = self.cfg
        batch = self.rows.shape[0]
        cur = np.zeros(batch, dtype=np.int64)
        parent_q = np.zeros(batch)
        leaf_parent = np.zeros(batch, dtype=np.int64)
        leaf_action = np.zeros(batch, dtype=np.int64)
        self.path_len[:] = 1
        rows = self.rows
        depth = 0
        while rows.size:
            node = cur[rows]
            child = self.children[rows, node]
            visited = child >= 0
            child_ix = np.where(visited, child, 0)
            r2 = rows[:, None]
            n_child = np.where(visited, self.visits[r2, child_ix], 0.0)
            parent_prefix = np.where(self.reset[rows, node], 0.0, self.prefix[rows, node])
            reward = self.prefix[r2, child_ix] - parent_prefix[:, None]
            q = reward + cfg.discount * self.value_sum[r2, child_ix] / np.maximum(n_child, 1.0)
            n_visited = visited.sum(axis=1)
            q_sum = np.where(visited, q, 0.0).sum(axis=1)
            if depth == 0:
                mean_q = np.where(n_visited > 0, q_sum / np.maximum(n_visited, 1), 0.0)
            else:
                mean_q = (parent_q[rows] + q_sum) / (n_visited + 1)
            parent_q[rows] = mean_q
            value_score = self.normalise(np.where(visited, q, mean_q[:, None]), rows)
            n_parent = self.visits[rows, node]
            c = (np.log((n_parent + cfg.pb_c_base + 1.0) / cfg.pb_c_base) + cfg.pb_c_init) * np.sqrt(n_parent)
            score = value_score + c[:, None] * self.prior[rows, node] / (n_child + 1.0)
            score = np.where(self.legal[rows], score, -np.inf)
            ties = score >= score.max(axis=1, keepdims=True) - TIE_EPS
            action = np.argmax(ties * rng.random(score.shape), axis=1)  # uniform among near-maximal scores
            nxt = child[np.arange(rows.size), action]
            stop = nxt < 0
            leaf_parent[rows[stop]] = node[stop]
            leaf_action[rows[stop]] = action[stop]
            go = rows[~stop]
            cur[go] = nxt[~stop]
            depth += 1
            self.path[go, depth] = nxt[~stop]
            self.path_len[go] += 1
            rows = go
        return leaf_parent, leaf_action

    def expand(self, new: int, parent: np.ndarray, action: np.ndarray, prefix: np.ndarray,
               prior: np.ndarray) -> np.ndarray:
        """Attach node ``new`` in every tree; returns which new nodes start a fresh LSTM horizon."""
        rows = self.rows
        self.children[rows, parent, action] = new
        self.prefix[:, new] = prefix
        self.prior[:, new] = prior
        self.depth[:, new] = self.depth[rows, parent] + 1
        self.reset[:, new] = self.depth[:, new] % self.cfg.lstm_horizon == 0
        self.path[rows, self.path_len] = new
        self.path_len += 1
        return self.reset[:, new]

    def backup(self, leaf_value: np.ndarray) -> None:
        """Backpropagate n-step returns along every path, deepest level first (MuZero Eq. 3-4)."""
        gamma = self.cfg.discount
        boot = leaf_value.astype(np.float64)
        for i in range(int(self.path_len.max()) - 1, -1, -1):
            rows = np.nonzero(self.path_len > i)[0]
            node = self.path[rows, i]
            self.value_sum[rows, node] += boot[rows]
            self.visits[rows, node] += 1.0
            if i > 0:
                parent = self.path[rows, i - 1]
                parent_prefix = np.where(self.reset[rows, parent], 0.0, self.prefix[rows, parent])
            else:
                parent_prefix = np.zeros(rows.size)
            reward = self.prefix[rows, node] - parent_prefix
            q = reward + gamma * self.value_sum[rows, node] / self.visits[rows, node]
            self.q_min[rows] = np.minimum(self.q_min[rows], q)
            self.q_max[rows] = np.maximum(self.q_max[rows], q)
            boot[rows] = reward + gamma * boot[rows]


def run_mcts(model: RecurrentModel, root: Inference, legal_mask: np.ndarray, cfg: EfficientZeroConfig,
             rng: np.random.Generator, add_noise: bool = True,
             num_simulations: int | None = None) -> SearchResult:
    """Search B roots at once; ``root`` is the network's ``initial_inference`` of the B observations.

    ``legal_mask`` is a bool [B, A] array over the full action head. Returns root visit counts and values.
    """
    start = time.perf_counter()
    sims = cfg.num_simulations if num_simulations is None else num_simulations
    legal = np.asarray(legal_mask, dtype=bool)
    batch = legal.shape[0]
    device = root.latent.device
    legal_t = torch.as_tensor(legal, device=device)
    trees = SearchTrees(batch, sims + 1, legal, cfg)

    prior = masked_softmax(root.policy_logits, legal_t).cpu().double().numpy()
    if add_noise and cfg.exploration_fraction > 0:
        gammas = rng.gamma(cfg.dirichlet_alpha, size=prior.shape) * legal  # Dirichlet over legal actions
        noise = gammas / np.maximum(gammas.sum(axis=1, keepdims=True), 1e-12)
        prior = (1 - cfg.exploration_fraction) * prior + cfg.exploration_fraction * noise
    trees.prior[:, 0] = prior
    trees.reset[:, 0] = True
    trees.visits[:, 0] = 1.0
    trees.value_sum[:, 0] = root.value.cpu().double().numpy()

    latents = root.latent.new_zeros((sims + 1, *root.latent.shape))
    hidden_h = root.reward_hidden[0].new_zeros((sims + 1, *root.reward_hidden[0].shape[1:]))
    hidden_c = torch.zeros_like(hidden_h)
    latents[0] = root.latent
    hidden_h[0], hidden_c[0] = root.reward_hidden[0][0], root.reward_hidden[1][0]
    tree_ix = torch.arange(batch, device=device)
    network_seconds = 0.0
    for sim in range(sims):
        parent, action = trees.select(rng)
        parent_t = torch.as_tensor(parent, device=device)
        tic = time.perf_counter()
        hidden = (hidden_h[parent_t, tree_ix][None], hidden_c[parent_t, tree_ix][None])
        action_t = torch.as_tensor(action, device=device)
        out = model.recurrent_inference(latents[parent_t, tree_ix], hidden, action_t)
        network_seconds += time.perf_counter() - tic
        new = sim + 1
        child_prior = masked_softmax(out.policy_logits, legal_t).cpu().double().numpy()
        reset = trees.expand(new, parent, action, out.value_prefix.cpu().double().numpy(), child_prior)
        keep = torch.as_tensor(~reset, device=device, dtype=hidden_h.dtype)[:, None]
        latents[new] = out.latent
        hidden_h[new] = out.reward_hidden[0][0] * keep
        hidden_c[new] = out.reward_hidden[1][0] * keep
        trees.backup(out.value.cpu().double().numpy())

    root_children = trees.children[:, 0]
    visits = np.where(root_children >= 0,
                      np.take_along_axis(trees.visits, np.maximum(root_children, 0), axis=1), 0.0)
    return SearchResult(visit_counts=visits.astype(np.int64),
                        root_values=trees.value_sum[:, 0] / trees.visits[:, 0],
                        root_priors=prior, network_seconds=network_seconds,
                        total_seconds=time.perf_counter() - start, trees=trees)
