"""The README's two set-up commands are what CI runs; every recipe validates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    return [b for b in blocks if b.startswith("python3 -m venv .venv")]


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    main_job, tests = readme_commands()[:2]
    assert main_job.endswith("xfer run recipes/quickstart.yaml")
    assert (ROOT / "recipes" / "quickstart.yaml").is_file()
    test_command = tests.split("&& ")[-1]
    assert test_command.endswith("-m pytest -q")
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines(), "the README's test command must be the one .ci/run runs"
    for install in tests.split(" && ")[1:3]:
        assert install in ci, f"CI must install like the README: {install}"


@pytest.mark.parametrize("recipe", sorted((ROOT / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_validates(recipe: Path) -> None:
    from xfer.plugins import get_registry
    from xfer.recipe_io import load_recipe

    load_recipe(recipe, get_registry())
