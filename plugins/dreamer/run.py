"""The ``dreamer`` method's entry points: ``run(recipe, ctx)`` and ``load_agent`` for ``xfer eval``.

Everything about looping lives in :mod:`xfer.dreamer.loop`; this module only builds the agent, the data
and the evaluator for the three modes, and loads another run's weights for ``mode: finetune``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium
from xfer_plugins.dreamer.config import DreamerMethodConfig

from xfer.data.dataset import DatasetFit, open_task_dataset
from xfer.data.replay import ReplayBuffer
from xfer.dreamer.agent import DreamerAgent
from xfer.dreamer.config import DreamerConfig
from xfer.dreamer.loading import LoadReport, learner_state
from xfer.dreamer.loop import EnvBatch, EvalAgent, replay_batches, train_offline, train_online
from xfer.dreamer.value_curves import ValueEvaluator
from xfer.errors import XferError
from xfer.recipe import Recipe, TaskSpec
from xfer.run.checkpoint import load_run_checkpoint
from xfer.run.context import RunContext


def agent_spec(env: gymnasium.Env, inputs: list[str], model: DreamerConfig) -> dict[str, Any]:
    """What rebuilding the agent needs (saved in every checkpoint's ``meta``): observation shapes of the
    ``inputs`` keys, action size, whether actions are discrete, and the model config."""
    space = env.observation_space
    missing = [key for key in inputs if key not in space.spaces]
    if missing:
        raise XferError(f"dreamer: the environment has no observation {missing[0]!r} (it has "
                        f"{sorted(space.spaces)})", hint="for 'state' set env.state: true in the recipe")
    discrete = isinstance(env.action_space, gymnasium.spaces.Discrete)
    act_dim = int(env.action_space.n) if discrete else int(env.action_space.shape[0])
    return {"obs_shapes": {key: list(space[key].shape) for key in inputs}, "act_dim": act_dim,
            "discrete": discrete, "model": model.model_dump(mode="json")}


def build_agent(spec: dict[str, Any], device: Any, **model_overrides: Any) -> DreamerAgent:
    cfg = DreamerConfig.model_validate({**spec["model"], "preset": None, **model_overrides})
    shapes = {key: tuple(shape) for key, shape in spec["obs_shapes"].items()}
    return DreamerAgent(shapes, spec["act_dim"], spec["discrete"], cfg, device=device)


def init_from_run(agent: DreamerAgent, cfg: DreamerMethodConfig, ctx: RunContext) -> LoadReport:
    """``mode: finetune``: copy every tensor of ``init_from`` whose name and shape fit; report and log it."""
    assert cfg.init_from is not None
    report = agent.load_matching(learner_state(load_run_checkpoint(cfg.init_from), cfg.init_from))
    if not report.loaded:
        raise XferError(f"finetune: no parameter of {str(cfg.init_from)!r} fits this agent "
                        f"({report.summary()})", hint="was it trained with another model size or inputs?")
    if report.skipped and cfg.strict_shapes:
        shown = "; ".join(f"{name}: {src} there, {own} here" for name, src, own in report.skipped[:4])
        raise XferError(f"finetune: {len(report.skipped)} tensor(s) of {str(cfg.init_from)!r} do not fit "
                        f"this agent's shapes: {shown}",
                        hint="set dreamer.strict_shapes: false to initialise those freshly")
    skipped = [{"name": n, "source": list(s), "own": list(o)} for n, s, o in report.skipped]
    (ctx.rundir / "finetune_load.json").write_text(json.dumps(
        {"init_from": str(cfg.init_from), "loaded": report.loaded, "skipped": skipped, "new": report.new,
         "unused": report.unused}, indent=2))
    ctx.say(f"finetune from {cfg.init_from}: {report.summary()} (details in finetune_load.json)")
    ctx.logger.log(0, {"finetune/loaded": len(report.loaded), "finetune/skipped": len(report.skipped),
                       "finetune/new": len(report.new)})
    return report


def offline_batches(ctx: RunContext, task: TaskSpec, cfg: DreamerMethodConfig, spec: dict[str, Any],
                    image_shape: tuple[int, ...]) -> Any:
    """Batches from ``task``'s dataset, refused with a message when it does not fit the environment."""
    if task.dataset is None:
        raise XferError(f"dreamer: offline training needs a dataset: give target "
                        f"{task.suite}/{task.task} a dataset (path or collect spec)",
                        hint="e.g. target: {suite: dmc, task: walker-walk, dataset: {path: data/...}}")
    path = ctx.dataset(task)
    state = spec["obs_shapes"].get("state")
    open_task_dataset(path, task, DatasetFit(image_shape=image_shape, action_size=spec["act_dim"],
                                             discrete=spec["discrete"],
                                             state_size=state[0] if state else None))
    buffer = ReplayBuffer(path, readonly=True, max_episodes=task.dataset.max_episodes)
    ctx.say(f"offline data: {path} ({buffer.num_episodes} episodes, {buffer.num_steps} steps)")
    return replay_batches(buffer, cfg.train.batch, cfg.train.seq_len, cfg.inputs)


def run(recipe: Recipe, ctx: RunContext) -> None:
    cfg: DreamerMethodConfig = recipe.config
    task = recipe.target
    if task is None:
        raise XferError("dreamer needs a target task (recipe key 'target')")
    settings = recipe.env_for(task).resolve(ctx.registry.suite(task.suite).defaults)
    eval_env = ctx.make_env(task, seed=recipe.seed)
    spec = agent_spec(eval_env, cfg.inputs, cfg.model)
    agent = build_agent(spec, ctx.device)
    if ctx.restore() is None and cfg.mode == "finetune":
        init_from_run(agent, cfg, ctx)
    # the critic against the true returns at every evaluation (CoWorld Fig. 5b's comparison with Offline DV2)
    episodes = cfg.train.eval_episodes or recipe.eval.episodes
    evaluator = ValueEvaluator(ctx, EvalAgent(agent), eval_env, episodes, gamma=cfg.model.discount)
    meta = {"spec": spec}
    if cfg.trains_online:
        train_env = ctx.make_env(task, seed=recipe.seed + 1, n=cfg.train.envs)
        envs = EnvBatch(train_env, settings.action_repeat or 1)
        replay = ReplayBuffer(ctx.rundir / "replay", capacity_steps=cfg.train.replay_capacity,
                              sampling=cfg.train.sampling)
        train_online(ctx, agent, envs, replay, cfg.train, evaluator, obs_keys=cfg.inputs, meta=meta)
        envs.env.close()
    else:
        image_shape = tuple(eval_env.observation_space["image"].shape)
        batches = offline_batches(ctx, task, cfg, spec, image_shape)
        train_offline(ctx, agent, batches, cfg.train, evaluator, meta=meta)
    eval_env.close()


def load_agent(rundir: Path, checkpoint: Path | None, device: str) -> EvalAgent:
    """The agent of a dreamer run's newest checkpoint (or of ``checkpoint``), for ``xfer eval``."""
    where = checkpoint or rundir
    state = load_run_checkpoint(where)
    meta = state.get("method", {}).get("meta", {})
    if "spec" not in meta:
        raise XferError(f"{str(where)!r} is not a checkpoint of a dreamer run (no agent spec)")
    agent = build_agent(meta["spec"], device, compile=False)
    agent.load_state_dict(learner_state(state, where))
    return EvalAgent(agent)
