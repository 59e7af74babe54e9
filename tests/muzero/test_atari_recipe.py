"""The Atari CPU recipe is exactly what the committed Krull runs ran (their resolved ``recipe.yaml``), so
``xfer run recipes/efficientzero_atari_cpu.yaml --set seed=S`` reproduces the results README's table."""

from __future__ import annotations

from pathlib import Path

import yaml

from xfer.plugins import get_registry
from xfer.recipe_io import load_recipe

ROOT = Path(__file__).parents[2]
RECIPE = ROOT / "recipes" / "efficientzero_atari_cpu.yaml"
KRULL_RUNS = sorted((ROOT / "benchmarks/results/efficientzero_atari/runs/krull").glob("seed*"))


def test_the_atari_recipe_resolves_to_the_krull_runs_settings() -> None:
    assert KRULL_RUNS
    for rundir in KRULL_RUNS:
        ran = yaml.safe_load((rundir / "recipe.yaml").read_text())
        overrides = [f"name={ran['name']}", f"seed={ran['seed']}", "logging.live=false"]
        assert load_recipe(RECIPE, get_registry(), overrides=overrides).to_dict() == ran, rundir.name

