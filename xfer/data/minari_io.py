"""Minari interoperability: export an xfer dataset to a local Minari dataset and import one back.

Minari stores ``T + 1`` observations with ``T`` actions where ``actions[t]`` is taken *at* ``obs[t]`` and
``rewards[t]`` follows it; xfer stores one row per observation with the action that *led to* it (see
:mod:`xfer.data.episode`). The conversion shifts by one: xfer ``action[1:]``/``reward[1:]`` are Minari's
``actions``/``rewards``, ``is_terminal[1:]`` its ``terminations`` and ``is_last[1:] & ~is_terminal[1:]`` its
``truncations``; ``success`` goes to the per-observation ``infos["success"]``. Observations are a Dict space
(``image``, optional ``state``) stored without JPEG compression, so a round trip is exact; one-hot discrete
actions become a ``Discrete`` space. xfer's own ``dataset.json`` fields ride along in the Minari
``description`` (as JSON), so an exported dataset imports with its suite, task and policy.

Datasets live where Minari keeps them (``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``); nothing
here downloads. ``minari`` (and its ``h5py`` storage backend) are imported lazily.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from xfer.data.dataset import Dataset, finalize_dataset, require_empty_output
from xfer.data.episode import Episode, one_hot, write_episode
from xfer.errors import MissingDependency, XferError

CHUNK_EPISODES = 16  # episodes handed to Minari at a time, so exports need not fit in memory


def _minari() -> Any:
    for module in ("minari", "h5py"):
        if importlib.util.find_spec(module) is None:
            raise MissingDependency("Minari import/export", module, "minari")
    import minari

    return minari


def _spaces(dataset: Dataset) -> tuple[Any, Any]:
    from gymnasium import spaces

    observation = {}
    if dataset.image_shape is not None:
        observation["image"] = spaces.Box(0, 255, dataset.image_shape, np.uint8)
    if dataset.state_size is not None:
        observation["state"] = spaces.Box(-np.inf, np.inf, (dataset.state_size,), np.float32)
    if dataset.discrete:
        action: Any = spaces.Discrete(dataset.action_size)
    else:
        action = spaces.Box(-1.0, 1.0, (dataset.action_size,), np.float32)
    return spaces.Dict(observation), action


def to_minari_buffer(episode: Episode, discrete: bool) -> Any:
    """One xfer episode as a Minari ``EpisodeBuffer`` (see the module docstring for the shift)."""
    from minari.data_collector import EpisodeBuffer

    observations = {key: episode[key] for key in ("image", "state") if key in episode}
    actions = episode["action"][1:]
    if discrete:
        actions = actions.argmax(axis=1).astype(np.int64)
    terminal, last = episode["is_terminal"][1:], episode["is_last"][1:]
    return EpisodeBuffer(observations=observations, actions=actions,
                         rewards=episode["reward"][1:].astype(np.float64), terminations=terminal,
                         truncations=last & ~terminal, infos={"success": episode["success"]})


def export_minari(dataset_dir: Path, dataset_id: str) -> Path:
    """Write the dataset at ``dataset_dir`` as the local Minari dataset ``dataset_id``; return its path."""
    minari = _minari()
    from minari.storage.datasets_root_dir import get_dataset_path

    dataset = Dataset.open(dataset_dir)
    if get_dataset_path(dataset_id).exists():
        raise XferError(f"Minari dataset {dataset_id!r} already exists at {get_dataset_path(dataset_id)}",
                        hint="choose another --id (or a higher version, e.g. name-v1)")
    observation_space, action_space = _spaces(dataset)
    meta = {key: value for key, value in dataset.meta.items() if key not in ("observation", "action")}
    buffers = (to_minari_buffer(ep, dataset.discrete) for ep in dataset if len(ep["reward"]) > 1)
    created = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Minari warns about every optional metadata field
        while chunk := [buffer for _, buffer in zip(range(CHUNK_EPISODES), buffers, strict=False)]:
            if created is None:
                try:
                    created = minari.create_dataset_from_buffers(
                        dataset_id, chunk, env=None, algorithm_name=f"xfer:{dataset.meta.get('policy')}",
                        author="xfer", action_space=action_space, observation_space=observation_space,
                        description=json.dumps({"xfer": meta}), jpeg_encoding=False)
                except ValueError as err:  # a malformed id
                    raise XferError(f"cannot export {dataset_dir} to Minari dataset {dataset_id!r}: {err}") \
                        from err
            else:
                created.update_dataset_from_buffer(chunk)
    if created is None:
        raise XferError(f"dataset {dataset_dir} has no episode with at least one step to export")
    return get_dataset_path(dataset_id)


def import_minari(dataset_id: str, out: Path) -> Path:
    """Convert the local Minari dataset ``dataset_id`` into an xfer dataset at ``out``; return ``out``."""
    minari = _minari()
    out = Path(out)
    require_empty_output(out)
    try:
        source = minari.load_dataset(dataset_id)
    except (FileNotFoundError, ValueError) as err:
        raise XferError(f"Minari dataset {dataset_id!r} is not available locally: {err}",
                        hint="Minari datasets are read from MINARI_DATASETS_PATH "
                             "(default ~/.minari/datasets)") from err
    read_obs = _observation_reader(dataset_id, source.observation_space)
    encode_actions = _action_encoder(dataset_id, source.action_space)
    success_defined = False
    for index, data in enumerate(source.iterate_episodes()):
        image, state = read_obs(data.observations)
        rows = len(image)
        success, defined = _success(data.infos, rows)
        success_defined = success_defined or defined
        episode = {
            "image": image,
            "action": np.concatenate([np.zeros((1, encode_actions.size), np.float32),
                                      encode_actions(data.actions)]),
            "reward": np.concatenate([[0.0], np.asarray(data.rewards, np.float64)]).astype(np.float32),
            "is_first": np.arange(rows) == 0,
            "is_last": np.arange(rows) == rows - 1,
            "is_terminal": np.concatenate([[False], np.asarray(data.terminations, bool)]),
            "success": success,
        }
        if state is not None:
            episode["state"] = state
        write_episode(out, index, episode)
    xfer_meta = _xfer_meta(source)
    env_id = source.env_spec.id if source.env_spec is not None else dataset_id
    algorithm = source.storage.metadata.get("algorithm_name") or "unknown"
    finalize_dataset(out, suite=xfer_meta.get("suite", "minari"), task=xfer_meta.get("task", env_id),
                     policy=xfer_meta.get("policy", algorithm),
                     seed=xfer_meta.get("seed"), env=xfer_meta.get("env"),
                     discrete=encode_actions.discrete, success_defined=success_defined,
                     source=f"minari:{dataset_id}")
    return out


def _xfer_meta(source: Any) -> dict[str, Any]:
    try:
        described = json.loads(source.storage.metadata.get("description") or "{}")
    except json.JSONDecodeError:
        return {}
    return described.get("xfer", {}) if isinstance(described, dict) else {}


def _observation_reader(dataset_id: str, space: Any) -> Any:
    """A function from Minari observations to ``(image, state or None)``; image = a uint8 H×W×C Box."""
    from gymnasium import spaces

    def is_image(sub: Any) -> bool:
        return isinstance(sub, spaces.Box) and sub.dtype == np.uint8 and len(sub.shape) == 3

    if is_image(space):
        return lambda obs: (np.asarray(obs, np.uint8), None)
    if isinstance(space, spaces.Dict):
        image_key = "image" if "image" in space.spaces else next(
            (key for key, sub in space.spaces.items() if is_image(sub)), None)
        if image_key is not None and is_image(space[image_key]):
            state_key = "state" if "state" in space.spaces else None
            return lambda obs: (np.asarray(obs[image_key], np.uint8),
                                None if state_key is None else np.asarray(obs[state_key], np.float32))
    raise XferError(f"Minari dataset {dataset_id!r}: observation space {space} has no image "
                    "(a uint8 H×W×C Box, alone or as a Dict entry)",
                    hint="xfer datasets hold image observations (and optionally a state vector)")


class _ActionEncoder:
    def __init__(self, size: int, discrete: bool) -> None:
        self.size, self.discrete = size, discrete

    def __call__(self, actions: Any) -> np.ndarray:
        actions = np.asarray(actions)
        if self.discrete:
            return np.stack([one_hot(a, self.size) for a in actions.reshape(-1)]).reshape(-1, self.size)
        return actions.astype(np.float32).reshape(len(actions), self.size)


def _action_encoder(dataset_id: str, space: Any) -> _ActionEncoder:
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete) and space.start == 0:
        return _ActionEncoder(int(space.n), True)
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        return _ActionEncoder(int(space.shape[0]), False)
    raise XferError(f"Minari dataset {dataset_id!r}: action space {space} is not supported",
                    hint="xfer datasets take a 1-d Box or a Discrete (starting at 0) action space")


def _success(infos: Any, rows: int) -> tuple[np.ndarray, bool]:
    """Per-row success from Minari infos (per observation, or per step without the reset row)."""
    values = (infos or {}).get("success")
    if values is None:
        return np.zeros(rows, bool), False
    values = np.asarray(values, bool).reshape(-1)
    if len(values) == rows - 1:
        values = np.concatenate([[False], values])
    if len(values) != rows:
        return np.zeros(rows, bool), False
    return values, True
