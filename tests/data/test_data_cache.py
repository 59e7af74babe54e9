"""Datasets from a recipe's collect spec: a stable cache key, reuse, resume, and explicit paths."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import xfer.data.collect as collect_module
from xfer.data.cache import cache_dir, cache_key, ensure_dataset
from xfer.data.dataset import read_manifest
from xfer.data.episode import episode_files
from xfer.envs.settings import EnvSettings
from xfer.errors import XferError
from xfer.recipe import CollectSpec, DatasetSpec, TaskSpec


def _task(**collect: object) -> TaskSpec:
    return TaskSpec(suite="fake", task="reach",
                    dataset=DatasetSpec(collect=CollectSpec(policy="random", episodes=3, **collect)))


def test_cache_key_is_stable_and_ignores_worker_counts() -> None:
    env = EnvSettings(image_size=16)
    key = cache_key("fake", "reach", env, CollectSpec(policy="random", episodes=3))
    assert key == cache_key("fake", "reach", EnvSettings(image_size=16),
                            CollectSpec(policy="random", episodes=3, workers=4))
    assert key == cache_key("fake", "reach", EnvSettings(image_size=16, workers=8),
                            CollectSpec(policy="random", episodes=3))
    # the same inputs give the same key in another process (a digest of canonical JSON, not hash())
    code = ("from xfer.data.cache import cache_key; from xfer.envs.settings import EnvSettings; "
            "from xfer.recipe import CollectSpec; "
            "print(cache_key('fake', 'reach', EnvSettings(image_size=16), "
            "CollectSpec(policy='random', episodes=3)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "123"})
    assert other.stdout.strip() == key and len(key) == 64
    changed = [
        cache_key("fake", "reach", env, CollectSpec(policy="random", episodes=3, seed=1)),
        cache_key("fake", "reach", env, CollectSpec(policy="random", episodes=4)),
        cache_key("fake", "reach", env, CollectSpec(policy="scripted", episodes=3)),
        cache_key("fake", "reach-far", env, CollectSpec(policy="random", episodes=3)),
        cache_key("fake", "reach", EnvSettings(image_size=32), CollectSpec(policy="random", episodes=3)),
    ]
    assert len({key, *changed}) == 6
    name = cache_dir(_task(), env, Path("/c")).name
    assert name.startswith("fake-reach-random-") and name.endswith(key[:12])


def test_ensure_collects_once_then_reuses(tmp_path: Path, registry, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = collect_module.collect

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(collect_module, "collect", counting)
    path = ensure_dataset(_task(), EnvSettings(), tmp_path, progress=False, registry=registry)
    assert path.parent == tmp_path and read_manifest(path)["episodes"] == 3 and len(calls) == 1
    reused = ensure_dataset(_task(workers=2), EnvSettings(), tmp_path, progress=False, registry=registry)
    assert reused == path
    assert len(calls) == 1  # reused, not collected again


def test_ensure_resumes_a_partial_collection(tmp_path: Path, registry) -> None:
    path = ensure_dataset(_task(), EnvSettings(), tmp_path, progress=False, registry=registry)
    victim = episode_files(path)[1]
    victim.unlink()
    manifest = read_manifest(path)
    (path / "dataset.json").write_text((path / "dataset.json").read_text().replace('"complete": true',
                                                                                     '"complete": false'))
    again = ensure_dataset(_task(), EnvSettings(), tmp_path, progress=False, registry=registry)
    assert again == path and victim.exists()
    assert read_manifest(path)["return"] == manifest["return"]  # the same episode was collected again


def test_ensure_with_a_path_checks_the_dataset(tmp_path: Path, make_dataset) -> None:
    path = make_dataset([3])
    spec = TaskSpec(suite="fake", task="reach", dataset=DatasetSpec(path=path))
    assert ensure_dataset(spec, EnvSettings(), tmp_path / "cache") == path
    missing = TaskSpec(suite="fake", task="reach", dataset=DatasetSpec(path=tmp_path / "none"))
    with pytest.raises(XferError, match="does not exist"):
        ensure_dataset(missing, EnvSettings(), tmp_path / "cache")
    with pytest.raises(XferError, match="has no dataset"):
        ensure_dataset(TaskSpec(suite="fake", task="reach"), EnvSettings(), tmp_path)
