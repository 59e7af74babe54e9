"""Suite plugins import cheaply and register what the docs say."""

from __future__ import annotations

import json
import subprocess
import sys

from xfer.plugins import get_registry

SUITES = ("metaworld", "dmc", "robodesk", "atari")
HEAVY = ("mujoco", "dm_control", "metaworld", "robodesk", "ale_py", "torch", "gym", "cv2", "gymnasium")


def test_plugin_init_imports_no_simulator() -> None:
    code = ("import sys, json\n"
            + "".join(f"import xfer_plugins.{name}\n" for name in SUITES)
            + f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_suites_are_registered_with_defaults_and_policies() -> None:
    registry = get_registry()
    counts = {name: len(registry.suite(name).tasks) for name in SUITES}
    assert counts == {"metaworld": 50, "dmc": 57, "robodesk": 18, "atari": 108}
    for name in SUITES:
        spec = registry.suite(name)
        assert "random" in spec.policies and spec.defaults["image_size"] in (64, 96)
    assert "scripted" in registry.suite("metaworld").policies
