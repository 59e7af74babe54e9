"""Episodes: the unit of xfer's data. Validation, atomic ``.npz`` writes, and loads that name a broken file.

An episode is a dict of equal-length arrays, one row per observation (``T`` rows for ``T - 1`` actions):

==============  ============  ==========================================================================
key             dtype         row ``t`` holds
==============  ============  ==========================================================================
``image``       uint8         observation ``o_t``, shape ``[T, H, W, C]``
``state``       float32       simulator state of ``o_t``, ``[T, D]``
``action``      float32       the action ``a_{t-1}`` that *led to* ``o_t`` (zeros at ``t = 0``), ``[T, A]``;
                              discrete actions are stored one-hot (``A`` = number of actions)
``reward``      float32       the reward received on arriving at ``o_t`` (zero at ``t = 0``), ``[T]``
``is_first``    bool          ``t == 0``
``is_last``     bool          ``t == T - 1`` (the episode ended here: terminated or truncated)
``is_terminal`` bool          ``o_t`` is a terminal state (no bootstrapping past it); false on truncation
``success``     bool          ``info["success"]`` on arriving at ``o_t`` (false where the suite defines none)
==============  ============  ==========================================================================

An episode holds ``image``, ``state`` or both (a state-only episode comes from ``env.pixels: false``).

This is DreamerV2's convention (Hafner et al. 2021): the world model reads ``(a_{t-1}, o_t)`` and predicts
``r_t`` at the same row. An episode of ``T`` rows has *length* ``T - 1`` (environment steps taken), its
return is ``reward.sum()`` and it succeeded if any row has ``success``.

Files are compressed ``.npz`` named ``ep{index:06d}_len{length}.npz``; the index is the order in which
episodes were finished (collection order). Writes go to a hidden temporary file that is flushed, fsynced and
renamed, so a crash never leaves a file that loads as an episode.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xfer.errors import XferError

Episode = dict[str, np.ndarray]

OBSERVATION_KEYS: dict[str, type] = {"image": np.uint8, "state": np.float32}
REQUIRED_KEYS: dict[str, type] = {
    "action": np.float32,
    "reward": np.float32,
    "is_first": np.bool_,
    "is_terminal": np.bool_,
    "success": np.bool_,
}
OPTIONAL_KEYS: dict[str, type] = {**OBSERVATION_KEYS, "is_last": np.bool_}
FILE_RE = re.compile(r"^ep(?P<index>\d{6,})_len(?P<length>\d+)\.npz$")


def episode_filename(index: int, length: int) -> str:
    """``ep000042_len500.npz``: the index orders episodes by collection; the length avoids opening them."""
    return f"ep{index:06d}_len{length}.npz"


def parse_filename(path: Path | str) -> tuple[int, int] | None:
    """``(index, length)`` of an episode file name, or ``None`` for anything else (temp files included)."""
    match = FILE_RE.match(Path(path).name)
    return (int(match["index"]), int(match["length"])) if match else None


def episode_files(directory: Path) -> list[Path]:
    """The episode files of a directory in collection order (temporary and foreign files ignored)."""
    found = [(parse_filename(p), p) for p in directory.iterdir() if p.is_file()]
    return [path for key, path in sorted((k, p) for k, p in found if k is not None)]


def episode_length(episode: Mapping[str, np.ndarray]) -> int:
    """Environment steps in the episode: rows minus one."""
    return len(episode["reward"]) - 1


def validate_episode(episode: Mapping[str, Any], name: str = "episode") -> Episode:
    """Check keys, dtypes and equal lengths; return the episode with ``is_last`` filled in if missing.

    Raises an :class:`XferError` naming the episode, the key, what was expected and what was found.
    """
    missing = [key for key in REQUIRED_KEYS if key not in episode]
    if not any(key in episode for key in OBSERVATION_KEYS):
        missing.insert(0, " or ".join(OBSERVATION_KEYS))
    if missing:
        raise XferError(f"{name}: missing key(s) {', '.join(missing)}",
                        hint=f"an episode needs image and/or state, {', '.join(REQUIRED_KEYS)}")
    out: Episode = {}
    rows = len(episode["reward"])
    if rows < 1:
        raise XferError(f"{name}: an episode needs at least one row (the first observation), found 0")
    for key, value in episode.items():
        array = np.asarray(value)
        want = REQUIRED_KEYS.get(key) or OPTIONAL_KEYS.get(key)
        if want is not None and array.dtype != want:
            raise XferError(f"{name}: key {key!r} has dtype {array.dtype}, expected {np.dtype(want)}")
        if array.ndim == 0 or len(array) != rows:
            found = array.shape[0] if array.ndim else "a scalar"
            raise XferError(f"{name}: key {key!r} has {found} rows, expected {rows} (as 'reward')")
        out[key] = array
    checks = {"image": 4, "action": 2, "state": 2}
    for key, ndim in checks.items():
        if key in out and out[key].ndim != ndim:
            raise XferError(f"{name}: key {key!r} has shape {out[key].shape}, expected {ndim} dimensions")
    if "is_last" not in out:
        out["is_last"] = np.zeros(rows, bool)
        out["is_last"][-1] = True
    return out


def write_episode(directory: Path, index: int, episode: Mapping[str, np.ndarray]) -> Path:
    """Validate and write ``episode`` atomically (temp file, fsync, rename) as ``ep{index}_len{L}.npz``."""
    episode = validate_episode(episode, name=f"episode {index}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / episode_filename(index, episode_length(episode))
    atomic_save_npz(path, episode)
    return path


def atomic_save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write a compressed ``.npz`` so that ``path`` either does not exist or holds the complete file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_CORRUPT = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError)


def load_episode(path: Path, keys: list[str] | None = None) -> Episode:
    """Load an episode file (all keys, or only ``keys``); a corrupt or truncated file raises an XferError
    naming it. Other files are unaffected: each episode is its own file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            names = data.files if keys is None else [k for k in keys if k in data.files]
            episode = {key: data[key] for key in names}
    except FileNotFoundError as err:
        raise XferError(f"episode file {path} does not exist") from err
    except _CORRUPT as err:
        raise XferError(f"episode file {path} is corrupt or truncated ({type(err).__name__}: {err})",
                        hint="delete or move this file (other episodes are unaffected), or collect it "
                             "again") from err
    if keys is None:
        episode = validate_episode(episode, name=f"episode file {path}")
        parsed = parse_filename(path)
        rows = len(episode["reward"])
        if parsed is not None and parsed[1] + 1 != rows:
            raise XferError(f"episode file {path} holds {rows} rows, but its name says length {parsed[1]} "
                            f"({parsed[1] + 1} rows)", hint="delete or move this file, or collect it again")
    return episode


def check_episode(path: Path) -> str | None:
    """``None`` if training can read the episode file, else the message :func:`load_episode` raises."""
    try:
        load_episode(path)
    except XferError as err:
        return err.message
    return None


def one_hot(index: int, size: int) -> np.ndarray:
    """A discrete action as Dreamer stores it: float32 one-hot of length ``size``."""
    if not 0 <= int(index) < size:
        raise XferError(f"discrete action {index} is outside 0..{size - 1}")
    row = np.zeros(size, np.float32)
    row[int(index)] = 1.0
    return row


def looks_one_hot(actions: np.ndarray) -> bool:
    """Whether every row of ``actions`` ``[T, A]`` is one-hot (how discrete actions are stored)."""
    if actions.ndim != 2 or len(actions) == 0 or actions.shape[1] < 2:
        return False
    binary = np.isin(actions, (0.0, 1.0)).all()
    return bool(binary and (actions.sum(axis=1) == 1.0).all())


class EpisodeBuilder:
    """Accumulates the rows of one episode from a gymnasium loop, in the convention above."""

    def __init__(self, action_size: int, discrete: bool) -> None:
        self.action_size = action_size
        self.discrete = discrete
        self.rows: list[dict[str, np.ndarray]] = []
        self.success_defined = False

    def start(self, obs: Mapping[str, Any], info: Mapping[str, Any]) -> None:
        """The reset observation: zero action, zero reward."""
        self.rows = []
        self._append(obs, np.zeros(self.action_size, np.float32), 0.0, False, False, info)

    def step(self, obs: Mapping[str, Any], action: Any, reward: float, terminated: bool, truncated: bool,
             info: Mapping[str, Any]) -> None:
        """The result of ``env.step(action)``."""
        self._append(obs, self.encode_action(action), reward, terminated, terminated or truncated, info)

    def encode_action(self, action: Any) -> np.ndarray:
        if self.discrete:
            return one_hot(int(np.asarray(action).reshape(-1)[0]), self.action_size)
        return np.asarray(action, np.float32).reshape(self.action_size)

    def _append(self, obs: Mapping[str, Any], action: np.ndarray, reward: float, terminal: bool, last: bool,
                info: Mapping[str, Any]) -> None:
        self.success_defined = self.success_defined or "success" in info
        row = {
            "action": action,
            "reward": np.float32(reward),
            "is_first": np.bool_(not self.rows),
            "is_last": np.bool_(last),
            "is_terminal": np.bool_(terminal),
            "success": np.bool_(bool(info.get("success", False))),
        }
        for key, dtype in OBSERVATION_KEYS.items():
            if key in obs:
                row[key] = np.asarray(obs[key], dtype)
        self.rows.append(row)

    def finish(self) -> Episode:
        """Stack the rows into an episode (the last row is marked ``is_last``)."""
        episode = {key: np.stack([row[key] for row in self.rows]) for key in self.rows[0]}
        episode["is_last"][-1] = True
        return validate_episode(episode)
