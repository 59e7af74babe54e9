"""The data layer: episodes, offline datasets, the disk-backed replay buffer, collection and Minari I/O.

See :mod:`xfer.data.episode` for the episode format and its action/reward alignment (DreamerV2's),
:mod:`xfer.data.dataset` for ``dataset.json``, :mod:`xfer.data.replay` for sequence sampling.
"""

from xfer.data.dataset import Dataset, DatasetFit
from xfer.data.episode import Episode, EpisodeBuilder, load_episode, validate_episode, write_episode
from xfer.data.replay import MixtureSampler, ReplayBuffer

__all__ = [
    "Dataset", "DatasetFit", "Episode", "EpisodeBuilder", "MixtureSampler", "ReplayBuffer", "load_episode",
    "validate_episode", "write_episode",
]
