"""Tiny CoWorld recipes for end-to-end tests: the repository's recipes with test-sized overrides."""

from __future__ import annotations

from pathlib import Path

RECIPES = Path(__file__).resolve().parents[2] / "recipes"

TINY = [
    "device=cpu", "eval.episodes=1", "eval.video=false", "eval.every=60", "checkpoint.every=40",
    "logging.every=2", "logging.tensorboard=true", "logging.live=false",
    "coworld.model.preset=tiny", "coworld.model.horizon=3", "coworld.batch_size=3", "coworld.batch_length=6",
    "coworld.prefill=10", "coworld.pretrain=1", "coworld.train_every=5", "coworld.source_warmup_steps=20",
    "coworld.target_iterations=2", "coworld.source_iterations=20", "coworld.rounds=2",
    "target.dataset.collect.policy=random", "target.dataset.collect.episodes=2",
]


def tiny_overrides(tmp_path: Path, time_limit: int = 10, extra: tuple[str, ...] = ()) -> list[str]:
    paths = [f"logdir={tmp_path / 'runs'}", f"datadir={tmp_path / 'data'}"]
    return [*TINY, *paths, f"env.time_limit={time_limit}", *extra]
