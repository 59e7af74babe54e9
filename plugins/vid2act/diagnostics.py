"""How well the frozen action replay decoder D_θ2 reproduces source actions from each state it could read in
Stage 2 (see :mod:`xfer_plugins.vid2act.guidance`, "What D_θ2 reads").

On labelled source batches, for the pair (state at t, source action taken from it, ``action[:, t+1]``), the
decoder's action for the true label with z = 0 is compared with the source action (mean squared error per
action entry, over the source's own action columns):

- ``teacher_posterior``: the teacher's posterior states, the inputs G_θ was trained on in Stage 1 (the floor);
- ``teacher_step``: s_t^k, the teacher's step from the student's previous posterior e_{t−1} with a_{t−1}
  (``replay_input: teacher``, the default);
- ``student_posterior``: the student's posterior e_t (``replay_input: student``, what Stage 2 fed before);
- ``zero_action``: the error of always answering 0, for scale.

    python -m xfer_plugins.vid2act.diagnostics RUNDIR [--batches 8]

prints the four numbers for a Vid2Act run with a Stage 2 checkpoint, on its recipe's source datasets, and
:func:`actor_inputs` on batches of the run's own replay: how far the student's actor is saturated
(pre-tanh mean of the action) and how much of its first layer's input comes from the replay features.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from xfer_plugins.vid2act.agent import Vid2ActAgent
from xfer_plugins.vid2act.teacher import shifted_previous


@torch.no_grad()
def replay_errors(agent: Vid2ActAgent, batch: Mapping[str, Any], source_act_dim: int | None = None
                  ) -> dict[str, float]:
    """The decoder's action error on one labelled source batch ([B, L] with ``cond`` [B, K] one-hot in the
    teacher's label order, actions padded to the teacher's size), per candidate input (module docstring)."""
    teacher, replay = agent.teacher, agent.teacher.replay
    data = agent.to_tensors(batch)
    label = data["cond"].float()
    columns = source_act_dim or teacher.source_act_dim
    target = data["action"].float()[:, 1:, :columns]
    mask = (1.0 - data["is_first"].float()[:, 1:]).unsqueeze(-1)
    student_batch = {**data, "action": data["action"][..., :agent.act_dim]}
    student_batch.pop("cond")
    student = agent.world_model.observe(student_batch)
    prev, prev_action = shifted_previous(student.post, student_batch["action"], data["is_first"])
    index = label.argmax(-1)
    stepped = teacher.world_model.rssm.feat(teacher.transit(prev, prev_action, range(teacher.num_labels)))
    rows = torch.arange(index.shape[0], device=index.device)
    inputs = {
        "teacher_posterior": teacher.observe(data).feat,
        "teacher_step": stepped[index, rows],
        "student_posterior": student.feat,
    }
    labels = label.unsqueeze(1).expand(-1, target.shape[1], -1)

    def error(action: Tensor) -> float:
        squared = (action[..., :columns] - target).square() * mask
        return float(squared.sum() / (mask.sum().clamp_min(1.0) * columns))

    out = {}
    for name, feat in inputs.items():
        z = feat.new_zeros(*feat.shape[:2], replay.cfg.latent)[:, :-1]
        out[name] = error(replay.decode(feat[:, :-1], labels, z))
    out["zero_action"] = error(torch.zeros_like(target))
    return out


@torch.no_grad()
def actor_inputs(agent: Vid2ActAgent, batch: Mapping[str, Any]) -> dict[str, float]:
    """On an imagination from the posteriors of a target batch ([B, L] of the run's replay): the actor's
    pre-tanh action mean (|μ| median, share with |μ| > 3, i.e. tanh' < 0.01), the mean |pre-activation| its
    first layer gets from the features and from the replay features, and |μ| median with the replay features
    zeroed."""
    data = agent.to_tensors(batch)
    out = agent.world_model.observe(data)
    for term in agent.world_model_terms:  # the distillation sets this update's label selection
        term(out, data)
    imag = agent.imagine(out)
    feat, extra = imag.feat[:-1], imag.extra
    assert extra is not None
    mean = imag.actor_out.chunk(2, -1)[0].abs()
    first = next(m for m in agent.behavior.actor.modules() if isinstance(m, torch.nn.Linear))
    width = feat.shape[-1]
    zeroed = agent.behavior.actor_forward(feat, torch.zeros_like(extra)).chunk(2, -1)[0].abs()
    return {"abs_mean_median": float(mean.median()), "saturated_share": float((mean > 3).float().mean()),
            "first_layer_from_features": float((feat @ first.weight[:, :width].T).abs().mean()),
            "first_layer_from_replay": float((extra @ first.weight[:, width:].T).abs().mean()),
            "abs_mean_median_replay_zeroed": float(zeroed.median())}


def run_actor_inputs(rundir: Path, batches: int = 4, seed: int = 0) -> dict[str, float]:
    """:func:`actor_inputs` averaged over ``batches`` batches of the run's replay (the Stage 2 schedule's
    batch shape)."""
    from xfer_plugins.vid2act.run import load_agent

    from xfer.data.replay import ReplayBuffer
    from xfer.dreamer.loop import replay_batches
    from xfer.plugins import get_registry
    from xfer.recipe_io import load_run_recipe

    agent = load_agent(rundir, None, "cpu").agent
    schedule = load_run_recipe(rundir, get_registry()).config.transfer.schedule
    sample = replay_batches(ReplayBuffer(rundir / "replay", readonly=True), schedule.batch, schedule.seq_len)
    rng = np.random.default_rng(seed)
    totals: dict[str, float] = {}
    for _ in range(batches):
        for name, value in actor_inputs(agent, sample(rng)).items():
            totals[name] = totals.get(name, 0.0) + value / batches
    return totals


def run_errors(rundir: Path, batches: int = 8, seed: int = 0) -> dict[str, float]:
    """:func:`replay_errors` averaged over ``batches`` source batches of a run (its recipe's sources)."""
    from types import SimpleNamespace

    from xfer_plugins.vid2act.pretrain import mixture_batches, open_sources
    from xfer_plugins.vid2act.run import load_agent

    from xfer.data.cache import ensure_dataset
    from xfer.plugins import get_registry
    from xfer.recipe_io import load_run_recipe

    registry = get_registry()
    agent = load_agent(rundir, None, "cpu").agent
    recipe = load_run_recipe(rundir, registry)
    datasets = SimpleNamespace(dataset=lambda spec: ensure_dataset(spec, recipe.env_for(spec), recipe.datadir,
                                                                   registry=registry))
    by_name = {spec.task: spec for spec in recipe.sources}
    opened = open_sources(datasets, [by_name[task] for task in agent.teacher.tasks])  # type: ignore[arg-type]
    schedule = recipe.config.transfer.schedule
    sample = mixture_batches(opened, agent.teacher.act_dim, schedule.batch, schedule.seq_len)
    rng = np.random.default_rng(seed)
    totals: dict[str, float] = {}
    for _ in range(batches):
        for name, value in replay_errors(agent, sample(rng)).items():
            totals[name] = totals.get(name, 0.0) + value / batches
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rundir", type=Path)
    parser.add_argument("--batches", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    report = {"replay_errors": run_errors(args.rundir, args.batches),
              "actor_inputs": run_actor_inputs(args.rundir, max(1, args.batches // 2))}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
