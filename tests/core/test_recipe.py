"""Recipe validation: errors name the key path and the bad value; suggestions; --set overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from xfer.errors import XferError
from xfer.recipe_io import RecipeError, apply_overrides, load_recipe, validate_recipe

GOOD = {
    "method": "fake-linear",
    "target": {"suite": "fake", "task": "reach"},
    "sources": [{"suite": "fake", "task": "reach-far"}],
    "fake-linear": {"steps": 7},
}


def problems(data: dict, registry) -> dict[str, str]:
    with pytest.raises(RecipeError) as info:
        validate_recipe(data, registry)
    return dict(info.value.problems)


def test_good_recipe_validates_core_and_method_sections(registry) -> None:
    recipe = validate_recipe(GOOD, registry, default_name="good")
    assert recipe.name == "good" and recipe.config.steps == 7 and recipe.config.batch == 4
    assert recipe.to_dict()["fake-linear"]["steps"] == 7


def test_unknown_method_key_names_path_and_suggests(registry) -> None:
    data = {**GOOD, "fake-linear": {"stpes": 3}}
    found = problems(data, registry)
    assert "fake-linear.stpes" in found and "did you mean 'steps'" in found["fake-linear.stpes"]


def test_unknown_core_keys_at_any_depth(registry) -> None:
    data = {**GOOD, "seeed": 1, "env": {"image_sise": 32},
            "sources": [{"suite": "fake", "task": "reach-far", "datset": {}}]}
    found = problems(data, registry)
    assert "did you mean 'seed'" in found["seeed"]
    assert "did you mean 'image_size'" in found["env.image_sise"]
    assert "did you mean 'dataset'" in found["sources.0.datset"]


def test_bad_value_is_named_with_the_value(registry) -> None:
    found = problems({**GOOD, "fake-linear": {"steps": -2}, "device": "gpu"}, registry)
    assert "-2" in found["fake-linear.steps"] and "greater than or equal to 1" in found["fake-linear.steps"]
    assert "cuda:N" in found["device"]


def test_unknown_method_suite_and_task_get_suggestions(registry) -> None:
    found = problems({**GOOD, "method": "fake-linaer"}, registry)
    assert "did you mean 'fake-linear'" in found["method"]
    found = problems({**GOOD, "target": {"suite": "fak", "task": "reach"},
                      "sources": [{"suite": "fake", "task": "reach-fra"}]}, registry)
    assert "did you mean 'fake'" in found["target.suite"]
    assert "did you mean 'reach-far'" in found["sources.0.task"]


def test_set_overrides_reach_the_validated_model(tmp_path: Path, registry) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    recipe = load_recipe(path, registry, ["fake-linear.lr=0.5", "seed=3", "env.image_size=32",
                                          "sources.0.task=reach", "target.dataset.collect.episodes=4"])
    assert recipe.config.lr == 0.5 and recipe.seed == 3 and recipe.env.image_size == 32
    assert recipe.sources[0].task == "reach" and recipe.target.dataset.collect.episodes == 4
    assert recipe.name == "r"


def test_override_syntax_errors() -> None:
    with pytest.raises(XferError, match="key.path=value"):
        apply_overrides({}, ["novalue"])
    with pytest.raises(XferError, match="not an index"):
        apply_overrides({"sources": [{}]}, ["sources.3.task=x"])


def test_file_errors(tmp_path: Path, registry) -> None:
    with pytest.raises(XferError, match="does not exist"):
        load_recipe(tmp_path / "missing.yaml", registry)
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: [unclosed")
    with pytest.raises(XferError, match="not valid YAML"):
        load_recipe(bad, registry)


@pytest.mark.parametrize("key", ["amp", "compile"])
def test_speed_switches_are_the_backbones_not_perf(registry, key: str) -> None:
    """perf.amp/perf.compile were read by nothing: a recipe setting them is told where the switch lives."""
    found = problems({**GOOD, "perf": {"threads": 1, key: True}}, registry)
    assert f"<method>.model.{key}" in found["perf"]
    assert validate_recipe({**GOOD, "perf": {"threads": 1}}, registry).perf.threads == 1
