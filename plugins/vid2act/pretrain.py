"""Stage 1 of Vid2Act: multi-task offline pretraining (paper Section 4.2, Eq. 1–4) on the shared offline loop.

Batches are drawn evenly from the N source datasets by :class:`~xfer.data.replay.MixtureSampler` and carry the
one-hot source label as ``cond``; actions are zero-padded to the teacher's action size. Each update is one
step of the mixture world model F_φ on Eq. 2 and one step of the action replay model G_θ on Eq. 4 (on F_φ's
detached posterior states), each with its own Adam. :func:`run_pretrain` runs them with
:func:`xfer.dreamer.loop.train_offline` (the loop's step = the update) and writes ``teacher.pt``.

**gap** (METHODS.md): the authors never released a working Stage 1 (their script never passes labels); this is
implemented from the paper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from xfer_plugins.vid2act.config import Vid2ActConfig
from xfer_plugins.vid2act.stages import PRETRAIN, StageContext
from xfer_plugins.vid2act.teacher import MixtureTeacher, teacher_model_config

from xfer.data.dataset import DatasetFit, open_task_dataset
from xfer.data.replay import MixtureSampler, ReplayBuffer
from xfer.dreamer.agent import make_adam
from xfer.dreamer.loop import train_offline
from xfer.dreamer.method_config import TrainSchedule
from xfer.errors import XferError
from xfer.recipe import TaskSpec
from xfer.run.context import RunContext
from xfer.run.distributed import any_rank, average_gradients

BATCH_KEYS = ("image", "action", "reward", "is_first", "is_terminal")


class PaddedSource:
    """A read-only source dataset with actions zero-padded to ``act_dim`` (for :class:`MixtureSampler`)."""

    def __init__(self, buffer: ReplayBuffer, act_dim: int) -> None:
        self.buffer, self.act_dim = buffer, act_dim
        self.directory = buffer.directory

    def sample(self, batch: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        data = self.buffer.sample(batch, length, rng)
        action = data["action"]
        pad = self.act_dim - action.shape[-1]
        if pad:
            data["action"] = np.concatenate([action, np.zeros((*action.shape[:-1], pad), action.dtype)], -1)
        return data


def source_names(sources: Sequence[TaskSpec]) -> list[str]:
    """Label names: the task names (``suite/task`` when two suites share a task name)."""
    names = [spec.task for spec in sources]
    if len(set(names)) < len(names):
        names = [f"{spec.suite}/{spec.task}" for spec in sources]
    if len(set(names)) < len(names):
        raise XferError(f"the sources list a task twice: {names}")
    return names


def open_sources(ctx: RunContext, sources: Sequence[TaskSpec]) -> list[tuple[ReplayBuffer, dict[str, Any]]]:
    """Each source's dataset (collected and cached from its ``collect:`` spec if needed) and its manifest."""
    opened = []
    for spec in sources:
        if spec.dataset is None:
            raise XferError(f"Vid2Act source {spec.suite}/{spec.task} has no dataset",
                            hint="give it `dataset: {collect: {policy: scripted, episodes: 10}}` or a path")
        path = ctx.dataset(spec)
        meta = open_task_dataset(path, spec, DatasetFit(image_size=64)).meta  # DreamerV2's codec: 64×64
        opened.append((ReplayBuffer(path, readonly=True, max_episodes=spec.dataset.max_episodes), meta))
    return opened


def mixture_batches(opened: Sequence[tuple[ReplayBuffer, dict[str, Any]]], act_dim: int, batch: int,
                    length: int) -> Any:
    """``rng -> batch``: [B, L] arrays drawn evenly from the sources, with one-hot ``cond`` [B, N]."""
    sampler = MixtureSampler([PaddedSource(buffer, act_dim) for buffer, _ in opened])  # type: ignore[list-item]
    count = len(opened)

    def sample(rng: np.random.Generator) -> dict[str, np.ndarray]:
        data = sampler.sample(batch, length, rng)
        out = {key: data[key] for key in BATCH_KEYS}
        out["cond"] = np.eye(count, dtype=np.float32)[data["source"]]
        return out

    return sample


def clip_and_step(opt: torch.optim.Optimizer, clip: float, weight_decay: float = 0.0) -> Tensor:
    """Average the gradients of ``opt``'s parameters over the ranks (several processes), clip their norm,
    step, and apply decoupled weight decay (DreamerV2)."""
    params = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
    average_gradients(params)  # several processes: the mean over ranks (xfer.run.distributed)
    norm = torch.nn.utils.clip_grad_norm_(params, clip, foreach=True)
    opt.step()
    if weight_decay:
        with torch.no_grad():
            torch._foreach_mul_(params, 1.0 - weight_decay)
    return norm.detach()


class TeacherTrainer:
    """Stage 1's learner for :func:`train_offline`: one F_φ step (Eq. 2) and one G_θ step (Eq. 4) a batch.

    With several processes the loop hands each rank its share of the global batch
    (:func:`xfer.run.distributed.share_batch`) and both steps apply the gradients averaged over the ranks,
    so every rank makes the global batch's update."""

    def __init__(self, teacher: MixtureTeacher, vae_lr: float, device: torch.device) -> None:
        self.teacher, self.device = teacher.to(device), device
        cfg = teacher.model_cfg
        self.wm_opt = make_adam(teacher.world_model.parameters(), cfg.wm_lr, cfg, device)
        self.vae_opt = torch.optim.Adam(teacher.replay.parameters(), lr=vae_lr)

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        data = {key: torch.as_tensor(value, device=self.device) for key, value in batch.items()}
        cfg = self.teacher.model_cfg
        wm_loss, metrics, out = self.teacher.world_model_loss(data)
        self.wm_opt.zero_grad(set_to_none=True)
        wm_loss.backward()
        metrics["wm/grad_norm"] = clip_and_step(self.wm_opt, cfg.grad_clip, cfg.weight_decay)
        vae_loss, vae_metrics = self.teacher.replay_loss(out, data)
        self.vae_opt.zero_grad(set_to_none=True)
        vae_loss.backward()
        average_gradients(self.teacher.replay.parameters())
        self.vae_opt.step()
        metrics.update(vae_metrics)
        metrics.pop("wm/reward_loss", None)  # computed by the backbone, scaled by 0: Eq. 2 has no reward
        return {f"pretrain/{name}": float(value) for name, value in metrics.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"world_model": self.teacher.world_model.state_dict(),
                "replay": self.teacher.replay.state_dict(), "wm_opt": self.wm_opt.state_dict(),
                "vae_opt": self.vae_opt.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.teacher.world_model.load_state_dict(state["world_model"])
        self.teacher.replay.load_state_dict(state["replay"])
        self.wm_opt.load_state_dict(state["wm_opt"])
        self.vae_opt.load_state_dict(state["vae_opt"])


def build_teacher(cfg: Vid2ActConfig, sources: Sequence[TaskSpec],
                  opened: Sequence[tuple[ReplayBuffer, dict[str, Any]]], target_act_dim: int
                  ) -> MixtureTeacher:
    """F_φ + G_θ over the sources; the action size is the largest of the sources' and the target's, and the
    largest source action size is recorded (Stage 2 masks the columns beyond it in the teacher's input)."""
    source_act_dim = max(int(meta["action"]["size"]) for _, meta in opened)
    act_dim = max(target_act_dim, source_act_dim)
    image = tuple(opened[0][1]["observation"]["image"]["shape"])
    model = teacher_model_config(cfg.model, cfg.pretrain.beta, cfg.pretrain.wm_lr)
    return MixtureTeacher({"image": image}, act_dim, model, source_names(sources), cfg.replay_vae,
                          source_act_dim)


def run_pretrain(ctx: RunContext, cfg: Vid2ActConfig, sources: Sequence[TaskSpec], target_act_dim: int,
                 teacher_path: Path) -> bool:
    """Stage 1 in ``ctx`` (steps 0 … ``pretrain.steps``); writes the frozen teacher to ``teacher_path``.
    Returns False when the run was asked to stop before Stage 1 finished."""
    opened = open_sources(ctx, sources)
    teacher = build_teacher(cfg, sources, opened, target_act_dim)
    ctx.say(f"Vid2Act Stage 1: mixture world model over {len(sources)} source task(s) "
            f"({', '.join(teacher.tasks)}), {cfg.pretrain.steps} updates")
    trainer = TeacherTrainer(teacher, cfg.pretrain.vae_lr, ctx.device)
    schedule = TrainSchedule(updates=cfg.pretrain.steps, batch=cfg.pretrain.batch, seq_len=cfg.pretrain.seq)
    batches = mixture_batches(opened, teacher.act_dim, cfg.pretrain.batch, cfg.pretrain.seq)
    stage = StageContext(ctx, PRETRAIN, offset=0, log_every=cfg.pretrain.log_every)
    meta = {"tasks": teacher.tasks, "act_dim": teacher.act_dim}
    train_offline(stage, trainer, batches, schedule, None, meta=meta, phase="vid2act stage 1")  # type: ignore[arg-type]
    if any_rank(ctx.should_stop()):  # several processes: a Ctrl-C that reached one rank stops them all
        return False
    teacher.save(teacher_path, steps=cfg.pretrain.steps)
    ctx.say(f"Vid2Act Stage 1 done: frozen teacher written to {teacher_path}")
    return True
