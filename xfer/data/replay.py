"""A disk-backed replay buffer with uniform sequence sampling (the Dreamer way) and an even mixture sampler.

The episode files in the directory *are* the data (one compressed ``.npz`` per finished episode, see
:mod:`xfer.data.episode`); the buffer keeps only their names and lengths in memory, and loads episodes
lazily into a least-recently-used cache bounded by ``cache_bytes`` — so datasets larger than RAM work, and
each episode is a chunk that is decompressed when a sampled sequence needs it.

Sampling draws ``batch`` sequences of ``length`` consecutive rows, by one of three schemes (``sampling``):

- ``uniform`` (default): uniformly over all windows that fit inside one episode (sequences never cross an
  episode boundary; episodes shorter than ``length`` rows are not sampled). For the usual fixed-length
  episodes this equals DreamerV2's "pick an episode, then a start"; with varying lengths every window is
  equally likely. Row t < ``length`` of an episode is covered by only t + 1 windows.
- ``ends``: as ``uniform`` plus, per episode, ``length`` more draws that all land on its last window:
  DreamerV2 code's ``replay.prioritize_ends`` (``index = min(randint(rows - L + 1 + L), rows - L)``), which
  its configs switch on.
- ``stream``: the finished episodes, in order, as one stream of rows, and a start drawn uniformly over it:
  a sequence may run from one episode into the next, whose first row carries ``is_first`` (the world model
  resets its state there), so every row is covered alike (sheeprl's sequential buffer).

The result depends only on the buffer's episodes and the ``rng`` given, never on the cache, so runs are
reproducible.

A checkpoint needs :meth:`ReplayBuffer.state_dict` only: the list of finished episode files and the rows of
episodes still in progress. Restoring it moves episode files written after the checkpoint aside into
``orphaned/`` so that an exact resume sees exactly the data it had.
"""

from __future__ import annotations

import shutil
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from xfer.data.episode import (
    OPTIONAL_KEYS,
    REQUIRED_KEYS,
    Episode,
    episode_files,
    load_episode,
    parse_filename,
    write_episode,
)
from xfer.errors import XferError

DEFAULT_CACHE_BYTES = 2 * 1024**3
DTYPES: dict[str, type] = {**REQUIRED_KEYS, **OPTIONAL_KEYS}
Sampling = Literal["uniform", "ends", "stream"]


class ReplayBuffer:
    """Episodes in ``directory``; ``add_step``/``add_episode`` for online data, ``sample`` for training.

    ``capacity_steps`` limits sampling to the newest episodes holding at most that many steps (older files
    stay on disk). ``readonly`` buffers (offline datasets) refuse additions. ``sampling``: see the module
    doc.
    """

    def __init__(self, directory: Path | str, *, cache_bytes: int = DEFAULT_CACHE_BYTES,
                 capacity_steps: int | None = None, readonly: bool = False,
                 max_episodes: int | None = None, sampling: Sampling = "uniform") -> None:
        self.directory = Path(directory)
        self.sampling = sampling
        if readonly and not self.directory.is_dir():
            raise XferError(f"replay directory {self.directory} does not exist")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cache_bytes = cache_bytes
        self.capacity_steps = capacity_steps
        self.readonly = readonly
        files = episode_files(self.directory)
        self._files: list[Path] = files[:max_episodes] if max_episodes is not None else files
        self._rows: list[int] = [parse_filename(f)[1] + 1 for f in self._files]  # type: ignore[index]
        self._next_index = self._index_after(self._files)
        self._in_progress: dict[int, list[dict[str, np.ndarray]]] = {}
        self._cache: OrderedDict[Path, Episode] = OrderedDict()
        self._cached_bytes = 0
        self.loads = 0  # episode files read from disk (for tests and diagnostics)

    @staticmethod
    def _index_after(files: Sequence[Path]) -> int:
        return max((parse_filename(f)[0] for f in files), default=-1) + 1  # type: ignore[index]

    # ---- contents -------------------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return len(self._files)

    @property
    def num_steps(self) -> int:
        """Environment steps in the finished episodes (rows minus one per episode)."""
        return sum(self._rows) - len(self._rows)

    @property
    def files(self) -> list[Path]:
        return list(self._files)

    def _sampleable(self) -> int:
        """Index of the first episode inside the capacity window."""
        if self.capacity_steps is None:
            return 0
        total, first = 0, len(self._rows)
        while first > 0 and total + self._rows[first - 1] - 1 <= self.capacity_steps:
            first -= 1
            total += self._rows[first] - 1
        return min(first, len(self._rows) - 1) if self._rows else 0

    def num_sequences(self, length: int) -> int:
        """How many distinct length-``length`` windows can be sampled."""
        first = self._sampleable()
        return int(sum(max(rows - length + 1, 0) for rows in self._rows[first:]))

    # ---- adding -----------------------------------------------------------------------------------------
    def add_episode(self, episode: Mapping[str, np.ndarray]) -> Path:
        """Write a finished episode (validated, atomically) as the next index and make it sampleable."""
        if self.readonly:
            raise XferError(f"replay {self.directory} is read-only (an offline dataset)")
        path = write_episode(self.directory, self._next_index, episode)
        self._next_index += 1
        self._files.append(path)
        self._rows.append(len(episode["reward"]))
        return path

    def add_step(self, row: Mapping[str, Any], worker: int = 0) -> Path | None:
        """Append one row (keys as in an episode, one step each) of environment stream ``worker``.

        A row with ``is_first`` starts a new episode (dropping an unfinished one of that worker); a row with
        ``is_last`` finishes it and writes it to disk, returning the file's path. Values of the episode keys
        are converted to the episode dtypes (Python floats and bools are fine).
        """
        if self.readonly:
            raise XferError(f"replay {self.directory} is read-only (an offline dataset)")
        rows = self._in_progress.setdefault(worker, [])
        if bool(row["is_first"]):
            rows.clear()
        elif not rows:
            raise XferError(f"replay {self.directory}: worker {worker} sent a step before its first row "
                            "(is_first=True)")
        rows.append({key: np.asarray(value, DTYPES.get(key)) for key, value in row.items()})
        if not bool(row.get("is_last", False)):
            return None
        episode = {key: np.stack([r[key] for r in rows]) for key in rows[0]}
        del self._in_progress[worker]
        return self.add_episode(episode)

    # ---- sampling ---------------------------------------------------------------------------------------
    def sample(self, batch: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``batch`` sequences of ``length`` rows by the buffer's ``sampling`` scheme (module doc); arrays
        ``[batch, length, ...]`` per key. Deterministic given the buffer's episodes and ``rng``."""
        if self.sampling == "stream":
            return self._sample_stream(batch, length, rng)
        first = self._sampleable()
        windows = np.array([max(rows - length + 1, 0) for rows in self._rows[first:]], np.int64)
        total = int(windows.sum())
        if total == 0:
            longest = max(self._rows, default=0)
            raise XferError(f"replay {self.directory}: no episode has {length} rows to sample a sequence "
                            f"from (episodes: {self.num_episodes}, longest: {longest} rows)",
                            hint="collect more data first, or sample shorter sequences")
        slots = windows + length * (windows > 0) if self.sampling == "ends" else windows
        ends = np.cumsum(slots)
        picks = rng.integers(0, int(ends[-1]), size=batch)
        episodes = np.searchsorted(ends, picks, side="right")
        starts = np.minimum(picks - (ends[episodes] - slots[episodes]), windows[episodes] - 1)
        order = np.argsort(episodes, kind="stable")  # load each episode once per batch
        pieces = [(int(row), 0, first + int(episodes[row]), int(starts[row]), length) for row in order]
        return self._gather(batch, length, pieces)

    def _sample_stream(self, batch: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Starts uniform over the concatenated rows of the sampleable episodes; a sequence continues into
        the next episodes until it has ``length`` rows."""
        first = self._sampleable()
        rows = np.array(self._rows[first:], np.int64)
        total = int(rows.sum())
        if total < length:
            raise XferError(f"replay {self.directory}: {total} rows in all, fewer than the {length} of one "
                            "sequence", hint="collect more data first, or sample shorter sequences")
        ends = np.cumsum(rows)
        pieces: list[tuple[int, int, int, int, int]] = []
        for row, pick in enumerate(rng.integers(0, total - length + 1, size=batch)):
            episode, at, filled = int(np.searchsorted(ends, pick, side="right")), int(pick), 0
            while filled < length:
                start = at - int(ends[episode] - rows[episode])
                take = min(length - filled, int(rows[episode]) - start)
                pieces.append((row, filled, first + episode, start, take))
                filled, at, episode = filled + take, at + take, episode + 1
        pieces.sort(key=lambda piece: piece[2])  # load each episode once per batch
        return self._gather(batch, length, pieces)

    def _gather(self, batch: int, length: int, pieces: list[tuple[int, int, int, int, int]]
                ) -> dict[str, np.ndarray]:
        """Fill ``[batch, length]`` arrays from ``pieces`` (batch row, offset in the sequence, episode index,
        first episode row, rows)."""
        out: dict[str, np.ndarray] = {}
        for row, offset, index, start, count in pieces:
            data = self._load(index)
            if not out:
                out = {key: np.empty((batch, length, *value.shape[1:]), value.dtype)
                       for key, value in data.items()}
            for key, array in out.items():
                if key not in data:
                    raise XferError(f"replay {self.directory}: episode {self._files[index]} "
                                    f"has no key {key!r} (other episodes do)")
                array[row, offset:offset + count] = data[key][start:start + count]
        return out

    def _load(self, i: int) -> Episode:
        path = self._files[i]
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        episode = load_episode(path)
        self.loads += 1
        self._cache[path] = episode
        self._cached_bytes += sum(a.nbytes for a in episode.values())
        while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
            _, evicted = self._cache.popitem(last=False)
            self._cached_bytes -= sum(a.nbytes for a in evicted.values())
        return episode

    @property
    def cached_episodes(self) -> int:
        return len(self._cache)

    # ---- checkpointing ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs: the finished episodes' file names, the next index, and the rows of the
        episodes in progress (numpy arrays per worker)."""
        return {
            "version": 1,
            "episodes": [f.name for f in self._files],
            "next_index": self._next_index,
            "in_progress": {worker: {key: np.stack([r[key] for r in rows]) for key in rows[0]}
                            for worker, rows in self._in_progress.items() if rows},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a checkpoint's view: exactly its episodes (files written later move to ``orphaned/``)."""
        names = list(state["episodes"])
        missing = [n for n in names if not (self.directory / n).exists()]
        if missing:
            raise XferError(f"replay {self.directory}: the checkpoint lists {len(missing)} episode file(s) "
                            f"that are missing, e.g. {missing[0]}", hint="the replay directory was changed")
        listed = set(names)
        later = [f for f in episode_files(self.directory) if f.name not in listed]
        if later:
            orphaned = self.directory / "orphaned"
            orphaned.mkdir(exist_ok=True)
            for path in later:
                shutil.move(str(path), orphaned / path.name)
        self._files = [self.directory / n for n in names]
        self._rows = [parse_filename(f)[1] + 1 for f in self._files]  # type: ignore[index]
        self._next_index = int(state["next_index"])
        self._in_progress = {
            int(worker): [{key: value[t] for key, value in arrays.items()}
                          for t in range(len(next(iter(arrays.values()))))]
            for worker, arrays in state.get("in_progress", {}).items()
        }
        self._cache.clear()
        self._cached_bytes = 0


class MixtureSampler:
    """Equal shares of every batch from N sources (Vid2Act samples its source tasks evenly).

    ``sample`` returns the concatenated batch (rows grouped by source) with ``"source"`` ``[batch]`` int64
    naming each row's source. When ``batch`` is not divisible by N, the remaining rows go to sources
    drawn without replacement from ``rng``. Keys present in every source are returned; their shapes must
    agree.
    """

    def __init__(self, sources: Sequence[ReplayBuffer]) -> None:
        if not sources:
            raise XferError("a mixture needs at least one source")
        self.sources = list(sources)

    def shares(self, batch: int, rng: np.random.Generator) -> list[int]:
        n = len(self.sources)
        shares = [batch // n] * n
        for i in rng.choice(n, size=batch % n, replace=False):
            shares[int(i)] += 1
        return shares

    def sample(self, batch: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        parts = [(i, src.sample(share, length, rng))
                 for i, (src, share) in enumerate(zip(self.sources, self.shares(batch, rng), strict=True))
                 if share > 0]
        keys = set.intersection(*(set(part) for _, part in parts))
        out: dict[str, np.ndarray] = {}
        for key in sorted(keys):
            shapes = {part[key].shape[2:] for _, part in parts}
            if len(shapes) > 1:
                found = ", ".join(f"source {i} ({self.sources[i].directory}): {part[key].shape[2:]}"
                                  for i, part in parts)
                raise XferError(f"mixture: key {key!r} differs in shape between sources: {found}",
                                hint="pad actions (env.pad_action_to) or use equal image sizes")
            out[key] = np.concatenate([part[key] for _, part in parts])
        out["source"] = np.concatenate([np.full(len(part["reward"]), i, np.int64) for i, part in parts])
        return out
