"""Whole-tree min-max normalisation of the batched MCTS, against hand-computed trees and a scalar reference.

``reference_search`` is a plain per-tree, per-node search written from the rules in the docstring of
xfer.muzero.mcts (EfficientZero's ctree with xfer's root convention); the array implementation must
reproduce its visit counts exactly on random models.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.mcts import masked_softmax, run_mcts

A = 3


def _c(cfg: EfficientZeroConfig, n: float) -> float:
    return (math.log((n + cfg.pb_c_base + 1) / cfg.pb_c_base) + cfg.pb_c_init) * math.sqrt(n)


def test_hand_built_tree_backups_range_and_scores(tabular_model) -> None:
    """Root (state 0) -> states 1, 2, 3 with rewards 1, 0, 0.5; state 1 -> state 4 with reward -2.

    Values V = 0, 4, 1, 0, 0; priors at the root 0.5 / 0.3 / 0.2, at state 1 0.6 / 0.3 / 0.1; gamma 0.5.
    sim 1 takes a0 (largest prior): Q(a0) = 1 + 0.5 * 4 = 3, root gets 3.
    sim 2: one value 3 in the range (max = min: raw Q, clipped to 1); a1 wins on its prior:
      Q(a1) = 0 + 0.5 * 1 = 0.5, root gets 0.5.
    sim 3: range [0.5, 3]; root mean Q 1.75 -> a0 (1 + 0.25 c3) beats a2 (0.5 + 0.2 c3) and a1 (0.15 c3);
      at state 1 every child scores the mean Q and a0 wins on its prior: node 3 gets Q = -2 + 0 = -2,
      node 1 gets -2 (value sum 2 over 2 visits, Q(a0) = 1 + 0.5 * 1 = 1.5), root gets 1 + 0.5 * -2 = 0.
    The range is now [-2, 1.5] over the tree's current Q values; a running range would still hold the
    stale 3 (and EZ code rebuilds it from scratch after every backup).
    """
    nxt = np.array([[1, 2, 3], [4, 4, 4], [4, 4, 4], [4, 4, 4], [4, 4, 4]])
    reward = np.array([[1.0, 0.0, 0.5], [-2.0] * 3, [0.0] * 3, [0.0] * 3, [0.0] * 3])
    logits = np.log(np.array([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1]] + [[1 / 3] * 3] * 3))
    model = tabular_model(nxt, reward, np.array([0.0, 4.0, 1.0, 0.0, 0.0]), logits)
    cfg = EfficientZeroConfig(preset="tiny", n_actions=A, discount=0.5)
    res = run_mcts(model, model.root([0]), np.ones((1, A), bool), cfg, np.random.default_rng(0),
                   add_noise=False, num_simulations=3)
    trees = res.trees
    assert res.visit_counts.tolist() == [[2, 1, 0]]
    assert np.allclose(trees.visits[0, :4], [4, 2, 1, 1])
    assert np.allclose(trees.value_sum[0, :4], [3.5, 2.0, 1.0, 0.0])
    assert np.allclose(trees.q[0, 1:4], [1.5, 0.5, -2.0])
    assert np.isclose(res.root_values[0], 3.5 / 4)
    assert np.isclose(trees.q_lo[0, 0], -2.0) and np.isclose(trees.q_scale[0, 0], 3.5)

    score, _, mean_q = trees.scores(trees.roots, None)  # the 4th selection at the root
    c4 = _c(cfg, 4.0)
    assert np.isclose(mean_q[0], 1.0)
    expected = [1.0 + c4 * 0.5 / 3, 2.5 / 3.5 + c4 * 0.3 / 2, 3.0 / 3.5 + c4 * 0.2 / 1]
    assert np.allclose(score[0], expected, rtol=1e-6)
    child, _, _ = trees.scores(trees.roots + 1, mean_q)  # at node 1: visited a0 (Q = -2), mean Q (1 - 2) / 2
    c2 = _c(cfg, 2.0)
    assert np.allclose(child[0], [0.0 + c2 * 0.6 / 2, 1.5 / 3.5 + c2 * 0.3, 1.5 / 3.5 + c2 * 0.1], rtol=1e-6)


def test_range_floor_and_raw_values_before_a_range_exists(tabular_model) -> None:
    """Q values 0.5 and 0.504 span less than value_delta_max = 0.01: they are divided by 0.01, not 0.004."""
    reward = np.array([[0.5, 0.504, 0.0], [0.0] * 3])
    logits = np.log(np.array([[0.5, 0.3, 0.2], [1 / 3] * 3]))
    model = tabular_model(np.array([[1, 1, 1]] * 2), reward, np.zeros(2), logits)
    cfg = EfficientZeroConfig(preset="tiny", n_actions=A)
    one = run_mcts(model, model.root([0]), np.ones((1, A), bool), cfg, np.random.default_rng(0),
                   add_noise=False, num_simulations=1)
    assert one.trees.q_lo[0, 0] == 0.0 and one.trees.q_scale[0, 0] == 1.0  # one value: no range yet
    score, _, _ = one.trees.scores(one.trees.roots, None)
    c2 = _c(cfg, 2.0)  # visited a0 scores its raw Q 0.5; the others the raw mean Q 0.5
    assert np.allclose(score[0], [0.5 + c2 * 0.25, 0.5 + c2 * 0.3, 0.5 + c2 * 0.2], rtol=1e-6)
    two = run_mcts(model, model.root([0]), np.ones((1, A), bool), cfg, np.random.default_rng(0),
                   add_noise=False, num_simulations=2)
    assert two.visit_counts.tolist() == [[1, 1, 0]]
    assert np.isclose(two.trees.q_lo[0, 0], 0.5) and np.isclose(two.trees.q_scale[0, 0], 0.01)
    score, _, _ = two.trees.scores(two.trees.roots, None)
    c3 = _c(cfg, 3.0)  # mean Q 0.502 -> 0.2; a1 -> 0.4
    assert np.allclose(score[0], [0.0 + c3 * 0.25, 0.4 + c3 * 0.15, 0.2 + c3 * 0.2], rtol=1e-5)


def reference_search(nxt: np.ndarray, reward: np.ndarray, value: np.ndarray, logits: np.ndarray,
                     state: int, legal: np.ndarray, root_prior: np.ndarray, cfg: EfficientZeroConfig,
                     sims: int) -> tuple[list[int], float, int]:
    """One tree, one node at a time. Returns root visit counts, root value and the number of near-ties."""
    gamma, legal_t = cfg.discount, torch.as_tensor(legal[None])

    def prior_of(s: int) -> np.ndarray:
        row = torch.as_tensor(logits[s][None], dtype=torch.float32)
        return masked_softmax(row, legal_t)[0].double().numpy()

    nodes = [dict(state=state, children={}, n=1.0, w=float(np.float32(value[state])), prior=root_prior,
                  prefix=np.float32(0.0), reset=True, depth=0, reward=0.0)]

    def q(node: dict) -> float:
        return node["reward"] + gamma * node["w"] / node["n"]

    ties = 0
    for _ in range(sims):
        qs = [q(node) for node in nodes[1:]]
        lo, hi = (min(qs), max(qs)) if qs else (0.0, 0.0)
        path, node, parent_q = [nodes[0]], nodes[0], None
        while True:
            child_q = {a: q(nodes[i]) for a, i in node["children"].items()}
            total = sum(child_q.values())
            if parent_q is None:
                mean_q = total / len(child_q) if child_q else 0.0
            else:
                mean_q = (parent_q + total) / (len(child_q) + 1)
            scores = []
            for a in range(len(legal)):
                v = child_q.get(a, mean_q)
                v = (v - lo) / max(hi - lo, cfg.value_delta_max) if hi > lo else v
                n_a = nodes[node["children"][a]]["n"] if a in node["children"] else 0.0
                scores.append(min(max(v, 0.0), 1.0) + _c(cfg, node["n"]) * node["prior"][a] / (n_a + 1)
                              if legal[a] else -math.inf)
            best = int(np.argmax(scores))
            ties += sum(s >= scores[best] - 1e-6 for s in scores) - 1
            parent_q = mean_q
            if best not in node["children"]:
                break
            node = nodes[node["children"][best]]
            path.append(node)
        s = int(nxt[node["state"], best])
        base = np.float32(0.0) if node["reset"] else node["prefix"]
        prefix = np.float32(base + np.float32(reward[node["state"], best]))  # the model's float32 sum
        depth = node["depth"] + 1
        child = dict(state=s, children={}, n=0.0, w=0.0, prior=prior_of(s), prefix=prefix,
                     reset=depth % cfg.lstm_horizon == 0, depth=depth, reward=float(prefix) - float(base))
        node["children"][best] = len(nodes)
        nodes.append(child)
        path.append(child)
        boot = float(np.float32(value[s]))
        for n in reversed(path):
            n["w"] += boot
            n["n"] += 1
            boot = n["reward"] + gamma * boot
    root = nodes[0]
    counts = [nodes[root["children"][a]]["n"] if a in root["children"] else 0 for a in range(len(legal))]
    return [int(c) for c in counts], root["w"] / root["n"], ties


def test_array_search_matches_scalar_reference_on_random_models(tabular_model) -> None:
    rng = np.random.default_rng(7)
    n_actions, n_states, batch = 5, 9, 6
    settings = [(5, 0.997**4, False), (2, 0.9, True), (1, 0.8, True)]  # lstm horizon, discount, root noise
    for trial, (horizon, discount, noise) in enumerate(settings):
        nxt = rng.integers(0, n_states, (n_states, n_actions))
        reward = rng.normal(size=(n_states, n_actions)).astype(np.float32)
        value = (2 * rng.normal(size=n_states)).astype(np.float32)
        logits = rng.normal(size=(n_states, n_actions)).astype(np.float32)
        legal = rng.random((batch, n_actions)) < 0.7
        legal[:, :2] = True
        model = tabular_model(nxt, reward, value, logits)
        cfg = EfficientZeroConfig(preset="tiny", n_actions=n_actions, lstm_horizon=horizon, discount=discount)
        states = rng.integers(0, n_states, batch).tolist()
        res = run_mcts(model, model.root(states), legal, cfg, np.random.default_rng(trial), add_noise=noise,
                       num_simulations=40)
        for b in range(batch):
            counts, root_value, ties = reference_search(nxt, reward, value, logits, states[b], legal[b],
                                                        res.root_priors[b], cfg, 40)
            assert ties == 0, (trial, b)  # no random tie-breaks: both searches are deterministic here
            assert res.visit_counts[b].tolist() == counts, (trial, b)
            assert np.isclose(res.root_values[b], root_value, rtol=1e-9), (trial, b)
