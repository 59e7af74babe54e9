"""The benchmark helpers run and report consistent numbers (tiny sizes)."""

from __future__ import annotations

from xfer.muzero.bench import bench_mcts, bench_train_step
from xfer.muzero.config import EfficientZeroConfig


def test_bench_helpers_report_throughput() -> None:
    cfg = EfficientZeroConfig(preset="tiny")
    search = bench_mcts(cfg, batch_envs=3, simulations=6, n_actions=18, repeats=1)
    assert search["sims_per_s"] > 0 and 0 < search["network_fraction"] < 1
    assert abs(search["network_fraction"] + search["tree_fraction"] - 1) < 1e-9
    step = bench_train_step(cfg, batch=4, steps=1)
    assert step["median_s_per_step"] > 0 and step["parameters"] > 0
