"""Offline datasets: a directory of episode files plus ``dataset.json``, opened with a fit check.

``dataset.json`` (format version 1)::

    {"format": "xfer-dataset", "format_version": 1, "complete": true,
     "suite": "metaworld", "task": "drawer-close",
     "observation": {"image": {"shape": [64, 64, 3], "dtype": "uint8"},
                     "state": {"shape": [39], "dtype": "float32"}},        # state only when present
     "action": {"size": 4, "discrete": false, "encoding": "continuous", "low": -1.0, "high": 1.0},
     "policy": "scripted", "seed": 0, "env": {...resolved EnvSettings...},
     "episodes": 10, "steps": 5000, "length": {"min": 500, "max": 500, "mean": 500.0},
     "return": {"mean": ..., "std": ..., "min": ..., "max": ...},
     "success_rate": 0.9, "success_defined": true, "created": "...", "source": "collect"}

Discrete actions have ``"encoding": "one-hot"`` and ``size`` = the number of actions (stored one-hot float32).
``steps`` counts environment steps (rows minus one per episode). A dataset being collected has
``"complete": false`` and is refused by :meth:`Dataset.open` until its collection finished.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xfer.data.episode import (
    Episode,
    atomic_save_npz,
    check_episode,
    episode_files,
    load_episode,
    parse_filename,
)
from xfer.errors import XferError

if TYPE_CHECKING:
    from xfer.data.replay import ReplayBuffer
    from xfer.recipe import TaskSpec

FORMAT = "xfer-dataset"
FORMAT_VERSION = 1
MANIFEST = "dataset.json"


@dataclass(frozen=True)
class DatasetFit:
    """What a recipe expects of a dataset; ``None`` fields are not checked. ``image_size`` checks only the
    square side (height and width), ``image_shape`` the whole ``H×W×C`` shape."""

    suite: str | None = None
    task: str | None = None
    image_shape: tuple[int, ...] | None = None
    image_size: int | None = None
    action_size: int | None = None
    discrete: bool | None = None
    state_size: int | None = None


def _shape(shape: Any) -> str:
    return "x".join(str(n) for n in shape) if shape is not None else "none"


@dataclass
class Dataset:
    """An opened dataset: its manifest and its episode files (at most ``max_episodes``, in index order)."""

    path: Path
    meta: dict[str, Any]
    files: list[Path] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path | str, max_episodes: int | None = None) -> Dataset:
        path = Path(path)
        meta = read_manifest(path)
        if not meta.get("complete", False):
            raise XferError(f"dataset {path} is incomplete: its collection did not finish",
                            hint="run the same `xfer data collect` command again to resume it")
        files = episode_files(path)
        if not files:
            raise XferError(f"dataset {path} has no episode files (ep*_len*.npz)")
        if max_episodes is not None:
            files = files[:max_episodes]
        return cls(path, meta, files)

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        """``H×W×C`` of the ``image`` observation; ``None`` for a state-only dataset (``env.pixels:
        false``)."""
        image = self.meta["observation"].get("image")
        return tuple(image["shape"]) if image else None

    @property
    def state_size(self) -> int | None:
        state = self.meta["observation"].get("state")
        return int(state["shape"][0]) if state else None

    @property
    def action_size(self) -> int:
        return int(self.meta["action"]["size"])

    @property
    def discrete(self) -> bool:
        return bool(self.meta["action"]["discrete"])

    def __len__(self) -> int:
        return len(self.files)

    @property
    def steps(self) -> int:
        return sum(parse_filename(f)[1] for f in self.files)  # type: ignore[index]

    def episode(self, i: int) -> Episode:
        return load_episode(self.files[i])

    def __iter__(self) -> Iterator[Episode]:
        for path in self.files:
            yield load_episode(path)

    def check_fits(self, expected: DatasetFit) -> None:
        """Refuse a dataset whose suite, task or spaces differ from ``expected``: one message naming the
        dataset and, for every differing field, the expected and the found value."""
        found: dict[str, tuple[Any, Any]] = {
            "suite": (expected.suite, self.meta.get("suite")),
            "task": (expected.task, self.meta.get("task")),
            "image shape": (_opt_shape(expected.image_shape), _shape(self.image_shape)),
            "image size": (_opt_shape(None if expected.image_size is None else (expected.image_size,) * 2),
                           _shape(self.image_shape[:2] if self.image_shape else None)),
            "action size": (expected.action_size, self.action_size),
            "discrete actions": (expected.discrete, self.discrete),
            "state size": (expected.state_size, self.state_size),
        }
        misfits = [f"{name}: expected {want}, found {got}" for name, (want, got) in found.items()
                   if want is not None and want != got]
        if misfits:
            raise XferError(f"dataset {self.path} does not fit the recipe: " + "; ".join(misfits),
                            hint="use a dataset collected for this task and these env settings, "
                                 "or change the recipe's env section to match the dataset")

    def replay(self, cache_bytes: int | None = None) -> ReplayBuffer:
        """A read-only :class:`~xfer.data.replay.ReplayBuffer` over this dataset's episodes (for sampling)."""
        from xfer.data.replay import DEFAULT_CACHE_BYTES, ReplayBuffer

        return ReplayBuffer(self.path, readonly=True, max_episodes=len(self.files),
                            cache_bytes=cache_bytes or DEFAULT_CACHE_BYTES)

    def verify(self) -> list[tuple[Path, str]]:
        """Every episode file that training would refuse, with the problem: each is loaded in full by
        :func:`~xfer.data.episode.load_episode`, the loader the replay buffer samples through (checksums,
        no pickled objects, keys, dtypes, shapes, rows matching the file name)."""
        problems = [(path, check_episode(path)) for path in self.files]
        return [(path, problem) for path, problem in problems if problem is not None]


def open_task_dataset(path: Path | str, task: TaskSpec, fit: DatasetFit | None = None) -> Dataset:
    """Open the dataset of a recipe's ``task`` (a source, the target, a teacher's source) and refuse it
    unless it fits: the one check every method's datasets go through. The suite and task always come from
    ``task``; ``fit`` adds what the method knows of the spaces (image, action, state). At most
    ``task.dataset.max_episodes`` episodes are opened."""
    dataset = Dataset.open(path, task.dataset.max_episodes if task.dataset is not None else None)
    dataset.check_fits(replace(fit or DatasetFit(), suite=task.suite, task=task.task))
    return dataset


def _opt_shape(shape: tuple[int, ...] | None) -> str | None:
    return None if shape is None else _shape(shape)


def read_manifest(path: Path) -> dict[str, Any]:
    """Read and check ``dataset.json``: present, valid JSON, xfer's format, a version this xfer reads."""
    manifest = path / MANIFEST
    if not path.is_dir():
        raise XferError(f"dataset {path} does not exist or is not a directory")
    if not manifest.exists():
        raise XferError(f"dataset {path} has no {MANIFEST}: not an xfer dataset",
                        hint="make one with `xfer data collect` or `xfer data import`")
    try:
        meta = json.loads(manifest.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise XferError(f"dataset {path}: {MANIFEST} is not valid JSON ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise XferError(f"dataset {path}: {MANIFEST} field 'format': expected {FORMAT!r}, "
                        f"found {meta.get('format') if isinstance(meta, dict) else meta!r}")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise XferError(f"dataset {path}: {MANIFEST} field 'format_version': expected at most "
                        f"{FORMAT_VERSION}, found {version}", hint="upgrade xfer to read this dataset")
    if meta.get("complete"):
        _check_spaces(path, meta)
    return meta


def _check_spaces(path: Path, meta: dict[str, Any]) -> None:
    """A complete manifest describes its spaces: ``observation`` (image and/or state shapes) and ``action``
    (size, discrete) — what the fit check reads."""
    obs, action = meta.get("observation"), meta.get("action")
    problems = []
    if not isinstance(obs, dict) or not any(isinstance(obs.get(k), dict) and isinstance(
            obs[k].get("shape"), list) for k in ("image", "state")):
        problems.append("'observation' needs an 'image' or 'state' entry with a 'shape' list")
    if not isinstance(action, dict) or not isinstance(action.get("size"), int) \
            or not isinstance(action.get("discrete"), bool):
        problems.append("'action' needs an integer 'size' and a boolean 'discrete'")
    if problems:
        raise XferError(f"dataset {path}: {MANIFEST} " + "; ".join(problems),
                        hint="restore the dataset's original dataset.json, or collect the dataset again")


def write_manifest(path: Path, meta: dict[str, Any]) -> None:
    """Write ``dataset.json`` atomically."""
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / f".{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path / MANIFEST)


def spaces_from_episode(episode: Episode, discrete: bool) -> dict[str, Any]:
    """The ``observation`` and ``action`` entries of a manifest, read off one episode."""
    observation: dict[str, Any] = {}
    if "image" in episode:
        observation["image"] = {"shape": list(episode["image"].shape[1:]), "dtype": "uint8"}
    if "state" in episode:
        observation["state"] = {"shape": list(episode["state"].shape[1:]), "dtype": "float32"}
    action: dict[str, Any] = {"size": int(episode["action"].shape[1]), "discrete": discrete,
                              "encoding": "one-hot" if discrete else "continuous"}
    if not discrete:
        action.update(low=-1.0, high=1.0)
    return {"observation": observation, "action": action}


def statistics(path: Path) -> dict[str, Any]:
    """Counts, lengths, return and success statistics of every episode file in ``path``.

    Reads only ``reward`` and ``success`` of each file (members of an ``.npz`` load independently)."""
    returns, successes, lengths = [], [], []
    for file in episode_files(path):
        data = load_episode(file, keys=["reward", "success"])
        returns.append(float(np.sum(data["reward"], dtype=np.float64)))
        successes.append(bool(np.any(data["success"])))
        lengths.append(len(data["reward"]) - 1)
    if not lengths:
        return {"episodes": 0, "steps": 0}
    ret = np.asarray(returns)
    return {
        "episodes": len(lengths),
        "steps": int(sum(lengths)),
        "length": {"min": min(lengths), "max": max(lengths), "mean": float(np.mean(lengths))},
        "return": {"mean": float(ret.mean()), "std": float(ret.std()), "min": float(ret.min()),
                   "max": float(ret.max())},
        "success_rate": float(np.mean(successes)),
    }


def require_empty_output(out: Path) -> None:
    """Refuse to write a new dataset into a directory that already holds files (one would be overwritten)."""
    if out.exists() and any(out.iterdir()):
        raise XferError(f"output directory {out} is not empty", hint="choose a new or empty --out directory")


def finalize_dataset(path: Path, **fields: Any) -> dict[str, Any]:
    """Write a complete ``dataset.json`` for the episodes in ``path``: spaces from the first episode,
    statistics from all, plus ``fields`` (suite, task, policy, seed, env, success_defined, source, ...)."""
    files = episode_files(path)
    if not files:
        raise XferError(f"dataset {path} has no episode files to describe")
    discrete = bool(fields.pop("discrete", False))
    meta: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "complete": True}
    meta.update({"suite": fields.pop("suite", None), "task": fields.pop("task", None)})
    meta.update(spaces_from_episode(load_episode(files[0]), discrete))
    meta.update(fields)
    meta.update(statistics(path))
    meta["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    write_manifest(path, meta)
    return meta


def copy_episode(source: Path, directory: Path, index: int | None = None) -> Path:
    """Copy an episode file into ``directory`` atomically, renumbered to ``index`` if given."""
    parsed = parse_filename(source)
    if parsed is None:
        raise XferError(f"{source} is not an episode file name (ep*_len*.npz)")
    name = source.name if index is None else f"ep{index:06d}_len{parsed[1]}.npz"
    episode = load_episode(source)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    atomic_save_npz(target, episode)
    return target
