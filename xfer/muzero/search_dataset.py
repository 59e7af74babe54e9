"""Offline datasets that keep the search statistics, from the replay of an ``efficientzero`` run.

The authors' offline games are the replays of trained EfficientZero agents, and their Stage 2 builds the
offline policy targets from the stored visit counts (``prepare_imitation_learning``). xfer's collected
datasets hold observations, actions and rewards only; :func:`export_search_dataset` turns a saved
:class:`~xfer.muzero.replay.PrioritizedReplay` (the ``replay-<step>/`` directory next to a run's
checkpoints) into an xfer dataset whose episodes also hold ``search_policy`` and ``search_value`` (see
``xfer_plugins.xtra.offline``), for ``xtra.finetune.offline_targets: stored``. On the command line:
``xfer data export-replay RUNDIR --out DIR`` (``--fraction`` / ``--until-return`` as for a Dreamer run).
One replay game (a self-play segment) becomes one episode; its rewards are as the replay stored them
(clipped when the run trained with ``env.options.train``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xfer.data.dataset import finalize_dataset, require_empty_output
from xfer.data.episode import Episode, write_episode
from xfer.data.replay_export import ended_by
from xfer.errors import XferError
from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.replay import GameHistory, PrioritizedReplay


def game_to_episode(game: GameHistory, frame_stack: int) -> Episode:
    """A replay game of T steps as a dataset episode of T + 1 rows (the inverse of
    ``xfer_plugins.xtra.offline.episode_to_game`` up to reward clipping)."""
    steps, n_actions = len(game), game.policies.shape[1]
    image = np.stack([game.stacked_obs(t, frame_stack).transpose(1, 2, 0) for t in range(steps + 1)])
    action = np.zeros((steps + 1, n_actions), np.float32)
    action[np.arange(1, steps + 1), game.actions] = 1.0
    pad = np.zeros((1, n_actions), np.float32)
    terminal = np.zeros(steps + 1, bool)
    terminal[-1] = game.terminal
    return {"image": np.ascontiguousarray(image, np.uint8), "action": action,
            "reward": np.concatenate([[0.0], game.rewards]).astype(np.float32),
            "is_first": np.arange(steps + 1) == 0, "is_terminal": terminal,
            "success": np.zeros(steps + 1, bool),
            "search_policy": np.concatenate([game.policies, pad]).astype(np.float32),
            "search_value": np.concatenate([game.root_values, [0.0]]).astype(np.float32)}


def export_search_dataset(replay_dir: Path, out: Path, cfg: EfficientZeroConfig, suite: str,
                          task: str, until_step: int | None = None, **manifest: Any) -> dict[str, Any]:
    """Write the games of the replay saved in ``replay_dir`` as episodes of the dataset ``out``: every game,
    or (``until_step``) those that ended by that many agent steps, counted as the sum of the game lengths in
    the order the replay stored them (the order self-play finished them). With several environments the
    cut is approximate: segments still being played are not in the sum, so a game may be kept up to about
    ``num_envs x segment_length`` steps after the stop. A replay that dropped its oldest games (capacity
    reached) cannot be cut this way and is refused."""
    require_empty_output(Path(out))
    replay = PrioritizedReplay.load(replay_dir, cfg)
    if until_step is not None and replay.first_id > 0:
        raise XferError(f"the replay {str(replay_dir)!r} dropped its first {replay.first_id} games (capacity "
                        "reached), so the agent step at which each game ended is unknown",
                        hint="export the whole replay (no --fraction / --until-return)")
    what = f"game of the replay {str(replay_dir)!r}"
    kept = ended_by([len(game) for game in replay.games], until_step, what, "agent step")
    for index, game in enumerate(replay.games[:kept]):
        write_episode(out, index, game_to_episode(game, cfg.frame_stack))
    return finalize_dataset(out, suite=suite, task=task, discrete=True, policy=f"replay:{replay_dir}",
                            search_statistics=True, **manifest)


def is_search_run(rundir: Path) -> bool:
    """Whether ``rundir`` looks like an ``efficientzero`` (or ``xtra``) run: self-play replays saved beside
    its checkpoints as ``replay-<step>/`` (a Dreamer run keeps one ``replay/``)."""
    return (Path(rundir) / "checkpoints").is_dir() and any(Path(rundir).glob("replay-*"))


def export_run(rundir: Path, out: Path, until_return: float | None = None,
               fraction: float | None = None) -> dict[str, Any]:
    """The replay saved with the newest checkpoint of an ``efficientzero`` run (or of an ``xtra`` run's Stage
    2) as a dataset of its target task, search statistics included; with ``until_return`` / ``fraction``
    only the games that ended by the agent step at which ``eval/return`` first reached that threshold (as
    :func:`xfer.data.replay_export.export_replay` does for a Dreamer run)."""
    from xfer.data.replay_export import read_eval_curve, run_target, stop_step
    from xfer.run.checkpoint import load_run_checkpoint

    rundir = Path(rundir)
    method = load_run_checkpoint(rundir)["method"]
    if "replay_dir" not in method or "agent" not in method:
        raise XferError(f"{str(rundir)!r} holds no EfficientZero self-play replay",
                        hint="export an efficientzero run directory (or an xtra run in Stage 2)")
    metrics = rundir / "metrics.jsonl"
    cut = until_return is not None or fraction is not None  # the whole replay needs no eval curve
    stop, threshold = stop_step(read_eval_curve(metrics) if cut else [], until_return, fraction, str(metrics))
    cfg = EfficientZeroConfig.model_validate(method["agent"]["config"])
    suite, task, _, _ = run_target(rundir)
    return export_search_dataset(rundir / method["replay_dir"], out, cfg, suite, task,
                                 until_step=stop, source="replay",
                                 replay={"run": str(rundir), "until_env_step": stop, "threshold": threshold,
                                         "fraction": fraction})
