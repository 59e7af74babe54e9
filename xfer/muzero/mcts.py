"""Batched, array-based MCTS for EfficientZero (MuZero Appendix B; Ye et al. 2021, Sec. 4.2 and App. A).

All B trees live in flat preallocated NumPy tables: tree b owns the node ids ``b * M .. b * M + M - 1``
(M = simulations + 1; the root is ``b * M`` and simulation s creates local node s + 1 in every tree), and
one extra id, ``sentinel``, stands for every unexpanded child (zero visits, zero Q), so reading the
statistics of all children of all current nodes is one ``take`` with no masking. Selection walks the B
paths in lockstep, one set of [B, A] vector operations per depth level for the whole batch (never a loop
over trees); a finished descent moves on to the sentinel. The backup updates every node of every path at
once and keeps, for those nodes, the two per-node quantities selection reads: the sum of the children's Q
(for the mean Q of unvisited children) and the pUCT prior term of each child. The latent and LSTM states
live in torch pools in simulation-major order, and the leaves of all trees are evaluated by one
``recurrent_inference`` call per simulation.

Rules, as MuZero / EfficientZero define them:
- pUCT (MuZero Eq. 2): score = Q_norm(s, a) + P(s, a) * sqrt(N(s)) / (1 + N(s, a))
  * (c1 + log((N(s) + c2 + 1) / c2)), c1 = 1.25, c2 = 19652.
- Q(s, a) = r(s, a) + gamma * V(s'), where the reward is the difference of the value prefixes of child and
  parent, or the child's prefix itself when the parent's LSTM state was reset (EfficientZero Sec. 4.2;
  the LSTM is reset every ``lstm_horizon`` depths, as in EZ code).
- Min-max normalisation as EZ code does it (``cback_propagate`` + ``update_tree_q`` in core/ctree/cnode.cpp):
  after every backup the range of each tree is rebuilt from the current Q(s, a) of every expanded node but
  the root (not a running range over the values seen, as in the MuZero pseudocode, which keeps stale
  values); Q_norm = (Q - min) / max(max - min, ``value_delta_max``) while max > min, the raw Q before that,
  then clipped to [0, 1]. Unvisited children score the parent's mean Q, normalised the same way (EZ code).
  Deviation from EZ code: its depth-first walk takes the parent prefix from the previously popped node,
  which is the true parent only along the first descent; xfer uses every node's own reward.
- Dirichlet(0.3) noise mixed with fraction 0.25 into the root priors only.
- Illegal actions (per-tree mask over the full action head) get prior 0 and score -inf: never visited.
- Ties within 1e-6 of the best score are broken uniformly at random (EZ code).
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


def masked_softmax(logits: torch.Tensor, legal: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the legal actions (all of them when ``legal`` is None)."""
    logits = logits.float()
    return torch.softmax(logits if legal is None else logits.masked_fill(~legal, float("-inf")), dim=-1)


def _numpy(x: torch.Tensor) -> np.ndarray:
    """A float tensor's values as a float64 array (float32 -> float64 is exact)."""
    return x.detach().cpu().numpy().astype(np.float64)


def exploration_weights(cfg: EfficientZeroConfig, max_visits: int) -> np.ndarray:
    """c(N) = (c1 + log((N + c2 + 1) / c2)) * sqrt(N) for N = 0..max_visits (MuZero Eq. 2), a lookup table."""
    n = np.arange(max_visits + 1, dtype=np.float64)
    return (np.log((n + cfg.pb_c_base + 1.0) / cfg.pb_c_base) + cfg.pb_c_init) * np.sqrt(n)


class SearchTrees:
    """Node statistics of B trees of M nodes in flat [B * M + 1(, A)] tables; see the module docstring."""

    def __init__(self, batch: int, max_nodes: int, legal: np.ndarray, cfg: EfficientZeroConfig) -> None:
        n_actions = legal.shape[1]
        self.cfg, self.batch, self.max_nodes, self.n_actions = cfg, batch, max_nodes, n_actions
        self.legal = legal
        self.sentinel = size = batch * max_nodes
        self.roots = np.arange(batch, dtype=np.int64) * max_nodes
        self.rows = np.arange(batch)
        self.children_flat = np.full((size + 1, n_actions), size, dtype=np.int64)
        self.prior_flat = np.zeros((size + 1, n_actions))
        self.visits_flat = np.zeros(size + 1)
        self.value_sum_flat = np.zeros(size + 1)
        self.q_flat = np.zeros(size + 1)  # Q(parent, a) of each node as a child: reward + gamma * V
        self.q_sum_flat = np.zeros(size + 1)  # sum of the Q of a node's expanded children
        self.expanded_flat = np.zeros(size + 1)  # number of a node's expanded children
        self.reward_flat = np.zeros(size + 1)  # r(parent, a), fixed at expansion
        self.discount_flat = np.full(size + 1, cfg.discount)  # per node; 1 at the sentinel (path padding)
        self.discount_flat[size] = 1.0
        self.prefix_flat = np.zeros(size + 1)  # value prefix the network reported
        self.base_flat = np.zeros(size + 1)  # prefix that the node's children subtract (0 after a reset)
        self.depth_flat = np.zeros(size + 1, dtype=np.int64)
        self.c_table = exploration_weights(cfg, max_nodes + 1)
        # prior term of pUCT, c(N(s)) * P(s, a) / (1 + N(s, a)), kept up to date for the nodes on each path
        self.explore_flat = np.zeros((size + 1, n_actions))
        self.dead_explore = -np.arange(n_actions, dtype=np.float64)  # the sentinel's: distinct, no ties
        self.explore_flat[size] = self.dead_explore
        self.cap = np.where(legal, 1.0, -np.inf)  # upper clip of Q_norm: -inf scores illegal actions
        self.path = np.full((batch, max_nodes + 2), size, dtype=np.int64)  # node ids by depth, sentinel after
        self.path[:, 0] = self.roots
        self.actions = np.zeros((batch, max_nodes + 1), dtype=np.int64)  # action taken at each depth
        self.leaf_depth = np.zeros(batch, dtype=np.int64)
        self.n_nodes = 1
        self.q_lo = np.zeros((batch, 1))  # Q_norm = clip((Q - q_lo) / q_scale, 0, 1)
        self.q_scale = np.ones((batch, 1))

    def _tree(self, table: np.ndarray) -> np.ndarray:
        return table[:self.sentinel].reshape(self.batch, self.max_nodes, *table.shape[1:])

    # [B, M(, A)] views by local node id, for inspection and tests
    prior = property(lambda self: self._tree(self.prior_flat))
    visits = property(lambda self: self._tree(self.visits_flat))
    value_sum = property(lambda self: self._tree(self.value_sum_flat))
    q = property(lambda self: self._tree(self.q_flat))
    prefix = property(lambda self: self._tree(self.prefix_flat))
    depth = property(lambda self: self._tree(self.depth_flat))

    @property
    def children(self) -> np.ndarray:
        """[B, M, A] local child ids, -1 where unexpanded."""
        ch = self._tree(self.children_flat)
        return np.where(ch == self.sentinel, -1, ch - self.roots[:, None, None])

    def init_roots(self, prior: np.ndarray, value: np.ndarray) -> None:
        roots = self.roots
        self.prior_flat[roots] = prior
        self.visits_flat[roots] = 1.0
        self.value_sum_flat[roots] = value
        self.explore_flat[roots] = self.c_table[1] * self.prior_flat[roots]

    def scores(self, node: np.ndarray,
               parent_q: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """pUCT scores [B, A] of the children of ``node`` (one id per tree), their ids, and the node's mean Q.

        ``parent_q`` is the mean Q of each node's parent, None at the roots (EZ code's ``get_mean_q``).
        """
        child = self.children_flat[node]
        q_sum, n_expanded = self.q_sum_flat[node], self.expanded_flat[node]
        if parent_q is None:
            mean_q = np.where(n_expanded > 0, q_sum / np.maximum(n_expanded, 1.0), 0.0)
        else:
            mean_q = (parent_q + q_sum) / (n_expanded + 1.0)
        value = np.where(child != self.sentinel, self.q_flat[child], mean_q[:, None])  # expanded = visited
        value -= self.q_lo
        value /= self.q_scale
        np.maximum(value, 0.0, out=value)
        np.minimum(value, self.cap, out=value)
        value += self.explore_flat[node]
        return value, child, mean_q

    def select(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Descend all trees in lockstep by pUCT; returns the leaf's parent node id and action per tree.

        A tree whose descent has ended moves on to the sentinel, whose children are the sentinel again
        and whose prior term has no ties, so the finished trees need no masking while the others go on;
        its path is padded with the sentinel, and its leaf parent is the last real node on it.
        """
        rows, path, actions, sentinel = self.rows, self.path, self.actions, self.sentinel
        node = self.roots
        parent_q = None
        depth = 0
        while True:
            score, child, parent_q = self.scores(node, parent_q)
            action = score.argmax(axis=1)
            ties = score >= (score[rows, action] - TIE_EPS)[:, None]
            if np.count_nonzero(ties) > rows.size:  # uniform among near-maximal scores (EZ code)
                action = (ties * rng.random(score.shape)).argmax(axis=1)
            actions[:, depth] = action
            node = child[rows, action]
            depth += 1
            path[:, depth] = node
            if node.min() == sentinel:  # the largest id: every descent has ended
                last = np.count_nonzero(path[:, 1:depth] != sentinel, axis=1)  # depth of the leaf parent
                return path[rows, last], actions[rows, last]

    def expand(self, new: int, parent: np.ndarray, action: np.ndarray, prefix: np.ndarray,
               prior: np.ndarray) -> np.ndarray:
        """Attach local node ``new`` in every tree; returns which new nodes start a fresh LSTM horizon."""
        node = self.roots + new
        at = slice(new, self.sentinel, self.max_nodes)  # node ``new`` of every tree
        self.children_flat.ravel()[parent * self.n_actions + action] = node
        self.expanded_flat[parent] += 1.0
        self.prior_flat[at] = prior
        depth = self.depth_flat[parent] + 1
        self.depth_flat[at] = depth
        reset = depth % self.cfg.lstm_horizon == 0
        self.prefix_flat[at] = prefix
        self.base_flat[at] = np.where(reset, 0.0, prefix)
        self.reward_flat[at] = prefix - self.base_flat[parent]
        self.path[self.rows, depth] = node
        self.leaf_depth = depth
        self.n_nodes = new + 1
        return reset

    def backup(self, leaf_value: np.ndarray) -> None:
        """Backpropagate n-step returns along every path (MuZero Eq. 3-4), then rebuild the min-max range.

        The node at depth i of a path whose leaf is at depth L receives G_i = r_{i+1} + gamma * G_{i+1},
        G_L = v (the leaf's value), for all paths at once: the sentinel padding has r = 0 and gamma = 1.
        """
        gamma = self.cfg.discount
        path = self.path[:, :int(self.leaf_depth.max()) + 1]
        reward, discount = self.reward_flat[path], self.discount_flat[path]
        returns = np.empty(path.shape)
        boot = leaf_value.astype(np.float64)
        for i in range(path.shape[1] - 1, 0, -1):
            returns[:, i] = boot
            boot = reward[:, i] + discount[:, i] * boot
        returns[:, 0] = boot
        real = path != self.sentinel
        node = path[real]  # every node once
        value_sum = self.value_sum_flat[node] + returns[real]
        visits = self.visits_flat[node] + 1.0
        self.value_sum_flat[node] = value_sum
        self.visits_flat[node] = visits
        self.q_flat[node] = reward[real] + gamma * value_sum / visits
        children = self.children_flat[node]
        self.q_sum_flat[node] = self.q_flat[children].sum(axis=1)
        c = self.c_table[visits.astype(np.int64)]
        self.explore_flat[node] = c[:, None] * self.prior_flat[node] / (self.visits_flat[children] + 1.0)
        self.update_range()

    def update_range(self) -> None:
        """Min-max range of each tree over the current Q of all its expanded non-root nodes (EZ code)."""
        q = self.q_flat[:self.sentinel].reshape(self.batch, self.max_nodes)[:, 1:self.n_nodes]
        lo, hi = np.minimum.reduce(q, axis=1), np.maximum.reduce(q, axis=1)
        delta = hi - lo
        known = delta > 0
        self.q_lo = np.where(known, lo, 0.0)[:, None]
        self.q_scale = np.where(known, np.maximum(delta, self.cfg.value_delta_max), 1.0)[:, None]


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
    legal_t = None if legal.all() else torch.as_tensor(legal, device=device)
    trees = SearchTrees(batch, sims + 1, legal, cfg)

    prior = _numpy(masked_softmax(root.policy_logits, legal_t))
    if add_noise and cfg.exploration_fraction > 0:
        gammas = rng.gamma(cfg.dirichlet_alpha, size=prior.shape) * legal  # Dirichlet over legal actions
        noise = gammas / np.maximum(gammas.sum(axis=1, keepdims=True), 1e-12)
        prior = (1 - cfg.exploration_fraction) * prior + cfg.exploration_fraction * noise
    trees.init_roots(prior, _numpy(root.value))

    # latent and LSTM pools in simulation-major order (slot = local node * B + tree: each simulation's
    # outputs are one contiguous block); only written slots are ever read
    nodes = batch * (sims + 1)
    ids = np.arange(nodes)
    slot = (ids % (sims + 1)) * batch + ids // (sims + 1)  # node id -> pool slot
    latents = root.latent.new_empty((nodes, *root.latent.shape[1:]))
    hidden_h = root.reward_hidden[0].new_empty((nodes, *root.reward_hidden[0].shape[2:]))
    hidden_c = torch.empty_like(hidden_h)
    latents[:batch] = root.latent
    hidden_h[:batch], hidden_c[:batch] = root.reward_hidden[0][0], root.reward_hidden[1][0]
    on_cpu = device.type == "cpu"
    network_seconds = 0.0
    for sim in range(sims):
        parent, action = trees.select(rng)
        tic = time.perf_counter()
        parent_t, action_t = torch.from_numpy(slot[parent]), torch.from_numpy(action)
        if not on_cpu:
            parent_t, action_t = parent_t.to(device), action_t.to(device)
        hidden = (hidden_h.index_select(0, parent_t)[None], hidden_c.index_select(0, parent_t)[None])
        out = model.recurrent_inference(latents.index_select(0, parent_t), hidden, action_t)
        network_seconds += time.perf_counter() - tic
        new = sim + 1
        child_prior = _numpy(masked_softmax(out.policy_logits, legal_t))
        reset = trees.expand(new, parent, action, _numpy(out.value_prefix), child_prior)
        block = slice(new * batch, (new + 1) * batch)
        latents[block] = out.latent
        hidden_h[block], hidden_c[block] = out.reward_hidden[0][0], out.reward_hidden[1][0]
        if reset.any():  # a fresh LSTM horizon starts from a zero state
            fresh = torch.from_numpy(new * batch + np.flatnonzero(reset)).to(device)
            hidden_h[fresh] = 0.0
            hidden_c[fresh] = 0.0
        trees.backup(_numpy(out.value))

    visits = trees.visits_flat[trees.children_flat[trees.roots]]
    root_values = trees.value_sum_flat[trees.roots] / trees.visits_flat[trees.roots]
    return SearchResult(visit_counts=visits.astype(np.int64), root_values=root_values,
                        root_priors=prior, network_seconds=network_seconds,
                        total_seconds=time.perf_counter() - start, trees=trees)
