"""Every package folder is installed, and plugins install as xfer_plugins (never a generic name)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "xfer").rglob("__init__.py")}
    found |= {".".join(("xfer_plugins",) + p.parent.relative_to(ROOT / "plugins").parts).rstrip(".")
              for p in (ROOT / "plugins").rglob("__init__.py")}
    assert found == listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert config["package-dir"]["xfer_plugins"] == "plugins"
    assert "plugins" not in listed


def test_builtin_entry_points_point_into_xfer_plugins() -> None:
    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["xfer"]
    assert all(target.startswith("xfer_plugins.") for target in eps.values())
    for name, target in eps.items():
        assert (ROOT / "plugins" / target.split(".")[1] / "__init__.py").exists(), name


def test_test_file_names_are_unique() -> None:
    """Test folders are not packages (pytest's default import mode): equal basenames would collide."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py") if not (p.parent / "__init__.py").exists()]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
