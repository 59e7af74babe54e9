"""The ``coworld`` method's entry points: ``run(recipe, ctx)`` and ``load_agent`` for ``xfer eval``.

``run`` builds one target agent and one source agent per ``sources:`` entry (identical DreamerV2
architecture, CoWorld's Table 7 learning rates and γ), wires the three stages into their seams
(:mod:`.agents`), and hands the alternation driver (:mod:`.learner`) to the shared online loop
(:func:`xfer.dreamer.loop.train_online`), which acts in the source simulators through :mod:`.routing`.
The target environment only evaluates the target agent (:mod:`.evaluation`); the target learns from its
offline dataset alone (``target.dataset``: a path, or a ``collect:`` spec collected once and cached).

Total source environment steps: ``sources × source_warmup_steps + (rounds − 1) × source_iterations``
(plus ``train_every`` so the last target phase always falls due): ``rounds`` target phases, the first right
after the warm-up, the others after each source phase. With ``source_init_from`` the warm-up is another
run's (:mod:`.warm_start`) and this run takes only the co-training steps.
"""

from __future__ import annotations

from pathlib import Path

from xfer_plugins.coworld.agents import (
    TargetData,
    TargetEvalAgent,
    build_agent,
    make_source_env,
    native_action_size,
    probe_action_size,
    task_name,
    wire_stages,
)
from xfer_plugins.coworld.config import CoWorldConfig
from xfer_plugins.coworld.learner import CoWorldLearner
from xfer_plugins.coworld.routing import SourceRouter
from xfer_plugins.coworld.warm_start import warm_start

from xfer.data.dataset import DatasetFit, open_task_dataset
from xfer.data.replay import ReplayBuffer
from xfer.dreamer.loop import train_online
from xfer.dreamer.method_config import TrainSchedule
from xfer.dreamer.value_curves import ValueEvaluator
from xfer.errors import XferError
from xfer.recipe import Recipe
from xfer.run.context import RunContext


def check_recipe(recipe: Recipe) -> None:
    if recipe.target is None or recipe.target.dataset is None:
        raise XferError("coworld needs a target task with an offline dataset (recipe key 'target.dataset')",
                        hint="e.g. target: {suite: metaworld, task: door-close, dataset: {collect: "
                             "{policy: random, episodes: 10}}}")
    if not recipe.sources:
        raise XferError("coworld needs at least one source task with a simulator (recipe key 'sources')")
    cfg: CoWorldConfig = recipe.config
    if len(recipe.sources) > 1 and cfg.target_pretrain_updates == 0:
        raise XferError("multi-source coworld compares encoders after the target world model is pretrained "
                        "alone (Appendix C step 1), but coworld.target_pretrain_updates is 0",
                        hint="set coworld.target_pretrain_updates, e.g. 20000 as in the authors' code")


def schedule_for(cfg: CoWorldConfig, sources: int) -> TrainSchedule:
    env_steps = sources * cfg.source_warmup_steps + (cfg.rounds - 1) * cfg.source_iterations + cfg.train_every
    return TrainSchedule(env_steps=env_steps, prefill=cfg.prefill, pretrain=cfg.pretrain,
                         train_every=cfg.train_every, envs=cfg.envs, batch=cfg.batch_size,
                         seq_len=cfg.batch_length)


def run(recipe: Recipe, ctx: RunContext) -> None:
    cfg: CoWorldConfig = recipe.config
    check_recipe(recipe)
    if cfg.source_init_from:  # the warm-up (its random prefill and pretraining included) was that run
        cfg = cfg.model_copy(update={"source_warmup_steps": 0, "prefill": 0, "pretrain": 0})
    target_task = recipe.target
    assert target_task is not None and target_task.dataset is not None
    settings = ctx.env_settings(target_task)
    obs_keys = ("image", "state") if settings.state else ("image",)
    eval_env = ctx.make_env(target_task, seed=recipe.seed)
    target_native = native_action_size(eval_env)
    space = eval_env.observation_space
    obs_shapes = {key: list(space[key].shape) for key in obs_keys}
    path = ctx.dataset(target_task)
    open_task_dataset(path, target_task, DatasetFit(
        image_shape=tuple(obs_shapes["image"]), action_size=target_native, discrete=False,
        state_size=obs_shapes["state"][0] if "state" in obs_shapes else None))

    natives = [probe_action_size(ctx, task, recipe.seed) for task in recipe.sources]
    act_dim = max(target_native, *natives)
    names = [f"{i}-{task.task}" for i, task in enumerate(recipe.sources)]
    target = build_agent(obs_shapes, act_dim, cfg.model, ctx.device, native=target_native)
    sources = [build_agent(obs_shapes, act_dim, cfg.model, ctx.device, native=native) for native in natives]
    target_data = TargetData(path, target_task.dataset.max_episodes, cfg.batch_size, cfg.batch_length,
                             act_dim, obs_keys, ctx.rng)
    stages = wire_stages(cfg, target, sources, names, target_data)
    if cfg.source_init_from:
        warm_start(ctx, list(cfg.source_init_from), list(recipe.sources), sources, names)
    envs = []
    for i, (task, native) in enumerate(zip(recipe.sources, natives, strict=True)):
        repeat = ctx.env_settings(task).resolve(ctx.registry.suite(task.suite).defaults).action_repeat or 1
        envs.append(make_source_env(ctx, task, act_dim, native, recipe.seed + 1 + i, cfg.envs, repeat))
    replays = [ReplayBuffer(ctx.rundir / "replay" / name, capacity_steps=cfg.replay_capacity)
               for name in names]
    router = SourceRouter(envs, replays, natives, cfg.source_warmup_steps)
    learner = CoWorldLearner(cfg, ctx, target, sources, stages, router, target_data)
    evaluator = ValueEvaluator(ctx, TargetEvalAgent(target, target_native), eval_env,
                               cfg.eval_episodes or recipe.eval.episodes, gamma=cfg.model.discount,
                               source=lambda: sources[stages.selected].behavior,
                               ready=lambda: learner.target_phases > 0,  # untrained before that
                               stamp=lambda: {"target_updates": learner.target_updates})
    ctx.say(f"coworld: target {task_name(target_task)} from {path} ({target_data.buffer.num_episodes} "
            f"episodes); sources {', '.join(task_name(t) for t in recipe.sources)}; action size {act_dim} "
            f"(target {target_native}, sources {natives})")
    meta = {"obs_shapes": obs_shapes, "act_dim": act_dim, "target_native": target_native,
            "model": cfg.model.model_dump(mode="json"), "sources": names}
    try:
        train_online(ctx, learner, router, router, schedule_for(cfg, len(sources)),  # type: ignore[arg-type]
                     evaluator, batches=router.batches(cfg.batch_size, cfg.batch_length, obs_keys),
                     obs_keys=obs_keys, meta=meta, phase="coworld")
    finally:
        router.close()
        eval_env.close()


def load_agent(rundir: Path, checkpoint: Path | None, device: str) -> TargetEvalAgent:
    """The *target* agent of a coworld run's newest checkpoint (or of ``checkpoint``), for ``xfer eval``."""
    from xfer.dreamer.config import DreamerConfig
    from xfer.run.checkpoint import load_run_checkpoint

    method = load_run_checkpoint(rundir, checkpoint).get("method", {})
    meta = method.get("meta", {})
    if "target_native" not in meta:
        raise XferError(f"{str(checkpoint or rundir)!r} is not a checkpoint of a coworld run")
    model = DreamerConfig.model_validate({**meta["model"], "preset": None})
    agent = build_agent(meta["obs_shapes"], meta["act_dim"], model, device, native=int(meta["target_native"]),
                        compile=False)
    agent.load_state_dict(method["learner"]["target"])
    return TargetEvalAgent(agent, int(meta["target_native"]))
