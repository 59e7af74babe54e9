"""A third-party plugin package, pip-installed, appears in `xfer list-plugins` and runs from a recipe."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

PKG = Path(__file__).parents[1] / "plugin_pkg"


def test_pip_installed_plugin_lists_and_runs(tmp_path: Path) -> None:
    source, target = tmp_path / "xfer-hello", tmp_path / "site"
    shutil.copytree(PKG, source)  # building leaves build/ and *.egg-info beside the sources: not in the repo
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, timeout=300, cwd=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(target)}
    listing = subprocess.run([sys.executable, "-m", "xfer.cli", "list-plugins", "--json"], env=env,
                             capture_output=True, text=True, timeout=60)
    rows = {row["plugin"]: row for row in json.loads(listing.stdout)}
    assert rows["hello"]["distribution"] == "xfer-hello" and rows["hello"]["version"] == "0.2.0"
    assert rows["hello"]["status"] == "ok"
    assert [m["name"] for m in rows["hello"]["methods"]] == ["hello"]

    recipe = {"method": "hello", "name": "hi", "device": "cpu", "logdir": str(tmp_path / "runs"),
              "target": {"suite": "fake", "task": "reach"}, "logging": {"tensorboard": False, "live": False},
              "hello": {"episodes": 3}}
    path = tmp_path / "hello.yaml"
    path.write_text(yaml.safe_dump(recipe))
    run = subprocess.run([sys.executable, "-m", "xfer.cli", "run", str(path)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rundir = next((tmp_path / "runs" / "hi").iterdir())
    lines = (rundir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all("train/return" in json.loads(line) for line in lines)

    blocked = subprocess.run([sys.executable, "-m", "xfer.cli", "list-plugins", "--json"],
                             env={**env, "XFER_DISABLE_PLUGINS": "hello"}, capture_output=True, text=True)
    assert {r["plugin"]: r["status"] for r in json.loads(blocked.stdout)}["hello"] == "blocked"
