"""Evaluation: run an agent for N episodes, report mean ± std return and success rate, write a video.

The video shows the agent's camera view; when the agent offers ``openloop(images, actions)`` (a world
model's open-loop prediction: the first frames observed, the rest imagined from the actions), the prediction
is placed next to the real frames — the picture Dreamer users look at.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from rich.console import Console

from xfer.errors import XferError
from xfer.interfaces import Agent

if TYPE_CHECKING:
    from xfer.recipe import Recipe
    from xfer.registry import Registry


def renders_images(env: Any) -> bool:
    """Whether ``env`` observes an ``image`` (false for ``env.pixels: false`` environments)."""
    spaces = getattr(env.observation_space, "spaces", None)
    return spaces is None or "image" in spaces


def run_episodes(agent: Agent, env: Any, episodes: int, seed: int, explore: bool = False,
                 record: bool = False) -> tuple[dict[str, float], list[dict[str, np.ndarray]]]:
    """Roll ``agent`` out in one gymnasium ``env``; the k-th episode is reset with ``seed + k``."""
    returns, successes, lengths, recorded = [], [], [], []
    for k in range(episodes):
        obs, info = env.reset(seed=seed + k)
        state, done, total, success, frames, actions = None, False, 0.0, False, [], []
        while not done:
            batched = {key: np.asarray(value)[None] for key, value in obs.items()}
            action, state = agent.act(batched, state, explore)
            action = action[0]
            if record:
                frames.append(obs["image"])
                actions.append(action)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            success = success or bool(info.get("success", False))
            done = terminated or truncated
        returns.append(total)
        successes.append(success)
        lengths.append(len(frames) if record else 0)
        if record:
            frames.append(obs["image"])
            recorded.append({"image": np.stack(frames), "action": np.stack(actions)})
    result = {"eval/return": float(np.mean(returns)), "eval/return_std": float(np.std(returns)),
              "eval/success": float(np.mean(successes)), "eval/episodes": float(episodes)}
    return result, recorded


def video_frames(agent: Agent, episode: dict[str, np.ndarray]) -> np.ndarray:
    """Real frames, with the agent's open-loop prediction to their right when the agent can predict."""
    images = episode["image"]
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    openloop = getattr(agent, "openloop", None)
    if openloop is None:
        return images
    predicted = openloop(episode["image"][:-1], episode["action"])
    if predicted.shape[-1] == 1:
        predicted = np.repeat(predicted, 3, axis=-1)
    n = min(len(predicted), len(images))
    return np.concatenate([images[:n], predicted[:n]], axis=2)


def write_video(path: Path, frames: np.ndarray, fps: int = 20) -> Path:
    """Write uint8 frames [T, H, W, 3] as .mp4 (ffmpeg from imageio-ffmpeg) or .gif."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    scale = max(1, 256 // frames.shape[1])
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    if path.suffix == ".gif":
        imageio.mimsave(path, list(frames), duration=1000 / fps, loop=0)
    else:
        imageio.mimsave(path, list(frames), fps=fps, macro_block_size=1)
    return path


class LoadedRun(NamedTuple):
    """A run's agent ready to act, with what evaluating it needs."""

    recipe: Recipe
    registry: Registry
    agent: Agent
    checkpoint: Path
    step: int


def load_run_agent(target: Path, device: str, console: Console) -> LoadedRun:
    """The agent of a run directory (newest readable checkpoint) or of one checkpoint file inside one, built
    by its method's ``load_agent`` on ``device``; bad input is one :class:`XferError` line."""
    from xfer.plugins import get_registry
    from xfer.recipe_io import load_run_recipe
    from xfer.registry import load_attr
    from xfer.run.device import select_device

    rundir, checkpoint = (target, None) if target.is_dir() else (target.parent.parent, target)
    if not (rundir / "recipe.yaml").is_file():
        raise XferError(f"{str(target)!r} is neither a run directory nor a checkpoint inside one")
    registry = get_registry()
    recipe = load_run_recipe(rundir, registry)
    spec = registry.method(recipe.method)
    if spec.load_agent is None:
        raise XferError(f"method {spec.name!r} does not support evaluation (it registers no load_agent)")
    if recipe.target is None:
        raise XferError(f"the recipe of {str(rundir)!r} has no target task to evaluate on")
    checkpoint, step = pick_checkpoint(rundir, checkpoint, console)
    dev = select_device(device, say=console.print)
    agent = load_attr(spec.load_agent, what=f"method {spec.name!r}", extra=spec.extra)(rundir, checkpoint,
                                                                                        str(dev))
    return LoadedRun(recipe, registry, agent, checkpoint, step)


def evaluate_run(target: Path, episodes: int, video: Path | None, explore: bool, seed: int, device: str,
                 console: Console) -> dict[str, Any]:
    """Evaluate the agent of a run directory (newest checkpoint) or of one checkpoint file."""
    from xfer.envs.make import make_env

    run = load_run_agent(target, device, console)
    recipe, agent = run.recipe, run.agent
    env = make_env(recipe.target.suite, recipe.target.task, recipe.env_for(recipe.target), seed,
                   registry=run.registry)
    if video is not None and not renders_images(env):
        env.close()
        raise XferError("--video needs images, but this run's environment renders none (env.pixels: false)",
                        hint="leave out --video; the run was recorded without rendering")
    result, recorded = run_episodes(agent, env, episodes, seed, explore, record=video is not None)
    env.close()
    if video is not None:
        write_video(video, video_frames(agent, recorded[0]))
        result["video"] = str(video)
    return {**result, "checkpoint": str(run.checkpoint), "step": run.step}


def pick_checkpoint(rundir: Path, checkpoint: Path | None, console: Console) -> tuple[Path, int]:
    """The checkpoint to evaluate and its step, said in one line: ``checkpoint`` when given, else the run's
    newest readable one (saying so when it fell back past unreadable newer ones)."""
    from xfer.run.checkpoint import Checkpointer, load_checkpoint

    if checkpoint is not None:
        path, state = checkpoint, load_checkpoint(checkpoint)
    else:
        if not (rundir / "checkpoints").is_dir():
            raise XferError(f"run {str(rundir)!r} has no checkpoints to evaluate")
        skipped: list[str] = []
        found = Checkpointer(rundir / "checkpoints").load_latest(say=skipped.append)
        if found is None:
            raise XferError(f"run {str(rundir)!r} has no readable checkpoint",
                            hint="; ".join(skipped) or None)
        path, state = found
        if skipped:
            console.print(f"the newest checkpoint cannot be used ({'; '.join(skipped)}); fell back to "
                          f"{path.name}", highlight=False, markup=False)
    step = int(state.get("step", -1))
    console.print(f"evaluating {path} (step {step})", highlight=False, markup=False)
    return path, step
