"""Datasets named by a recipe's ``collect:`` spec: collected once, cached under a name derived from the spec.

The cache key is a SHA-256 of the canonical JSON of (format version, suite, task, the environment settings,
policy, episodes, seed). Worker counts (``collect.workers``, ``env.workers``) are left out: episode ``i`` is
seeded from ``(seed, i)`` whatever the number of workers, so they do not change the data. A complete cached
dataset is reused; a partial one (an interrupted collection) is resumed; a missing one is collected.
For ``checkpoint:RUNDIR`` policies the key holds the run directory's path, not its checkpoint: delete the
cached directory to collect again after further training.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from xfer.data.dataset import MANIFEST, read_manifest
from xfer.envs.settings import EnvSettings
from xfer.errors import XferError
from xfer.recipe import CollectSpec, TaskSpec
from xfer.registry import Registry

# 2: the Atari suite's default colour became RGB, so a gray dataset cached under version 1 with default
# settings no longer fits a default recipe.
KEY_VERSION = 2


def cache_key(suite: str, task: str, env: EnvSettings, spec: CollectSpec) -> str:
    """A stable hex digest of everything that determines the collected data."""
    payload: dict[str, Any] = {
        "version": KEY_VERSION, "suite": suite, "task": task,
        "env": env.model_dump(mode="json", exclude={"workers"}),
        "collect": spec.model_dump(mode="json", exclude={"workers"}),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def cache_dir(task_spec: TaskSpec, env: EnvSettings, cache_root: Path) -> Path:
    """``cache_root/{suite}-{task}-{policy}-{key[:12]}`` (policy reduced to safe file-name characters)."""
    if task_spec.dataset is None or task_spec.dataset.collect is None:
        raise XferError(f"task {task_spec.suite}/{task_spec.task} has no dataset collect spec")
    spec = task_spec.dataset.collect
    key = cache_key(task_spec.suite, task_spec.task, env, spec)
    policy = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.policy.split(":")[0])
    return Path(cache_root) / f"{task_spec.suite}-{task_spec.task}-{policy}-{key[:12]}"


def is_complete(path: Path, episodes: int) -> bool:
    if not (path / MANIFEST).exists():
        return False
    meta = read_manifest(path)
    return bool(meta.get("complete")) and int(meta.get("episodes", 0)) >= episodes


def ensure_dataset(task_spec: TaskSpec, env_settings: EnvSettings, cache_root: Path, progress: bool = True,
                   registry: Registry | None = None) -> Path:
    """The directory of ``task_spec``'s dataset: its ``path`` (checked to be a complete xfer dataset), or
    the cached collection of its ``collect`` spec, collecting or resuming it first when needed."""
    dataset = task_spec.dataset
    where = f"task {task_spec.suite}/{task_spec.task}"
    if dataset is None:
        raise XferError(f"{where} has no dataset", hint="give the task a dataset: path or collect spec")
    if dataset.path is not None:
        path = Path(dataset.path)
        meta = read_manifest(path)
        if not meta.get("complete"):
            raise XferError(f"dataset {path} ({where}) is incomplete: its collection did not finish",
                            hint="run its `xfer data collect` command again to resume it")
        return path
    if dataset.collect is None:
        raise XferError(f"{where}: the dataset needs a 'path' or a 'collect' spec")
    spec = dataset.collect
    path = cache_dir(task_spec, env_settings, cache_root)
    if is_complete(path, spec.episodes):
        return path
    from xfer.data.collect import collect

    return collect(task_spec.suite, task_spec.task, env_settings, spec.policy, spec.episodes, path,
                   seed=spec.seed, workers=spec.workers, progress=progress, registry=registry)
