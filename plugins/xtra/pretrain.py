"""XTRA Stage 1, offline multi-task pretraining (Xu et al. 2023, Sec. 3.1). Not released by the authors:
xfer implements it from the paper.

1. Teachers: one EfficientZero per pretraining game, trained by offline RL on that game's fixed dataset in
   the MuZero Reanalyze style (Schrittwieser et al. 2021): every batch's value targets (n-step, bootstrapped
   by the teacher's target network) and policy targets (a fresh MCTS) are recomputed on the fixed data; the
   loss is EfficientZero's (XTRA App. A, Eq. 3).
2. Student: one multi-task model trained on batches drawn evenly (B/m each) and uniformly from all m games,
   with value and policy targets produced by each game's frozen teacher instead of the student itself
   (``TargetSource(teacher, ...)``); reward (value-prefix) targets come from the data and the consistency
   loss from the student's own encoder, as in Eq. 3. Loss: (1/m) sum_i L_i^ez, i.e. the mean over the
   joint batch, computed in one forward pass over it (batch norm shared by all games, as in Stage 2).
   Policies use the full 18-action head with each game's legal actions (masked softmax).

Progress is counted in updates: teacher i's update u is step i * teacher_steps + u, the student's update u
is step m * teacher_steps + u; checkpoints at any update resume exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from xfer_plugins.xtra.config import PretrainSettings
from xfer_plugins.xtra.joint import concat_batches, split_losses
from xfer_plugins.xtra.offline import load_priorities, priorities_state

from xfer.muzero.agent import agent_state
from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.learner import Learner, Losses, weighted_total
from xfer.muzero.loop import build_learner, efficientzero_update, role_seeds
from xfer.muzero.networks import EfficientZeroNet
from xfer.muzero.replay import PrioritizedReplay, SampledPositions
from xfer.muzero.targets import TargetSource, TrainBatch, make_batch
from xfer.run.context import RunContext


@dataclass
class OfflineGame:
    """A pretraining game: its name, its dataset as a replay, its legal actions, and whether every episode
    of the dataset stored the collecting agent's search policies (:func:`xtra.offline.has_search`)."""

    name: str
    replay: PrioritizedReplay
    legal: np.ndarray
    searched: bool = False


def frozen(net: EfficientZeroNet) -> EfficientZeroNet:
    return net.eval().requires_grad_(False)


def teacher_source(net: EfficientZeroNet, settings: PretrainSettings) -> TargetSource:
    """Distillation targets from a frozen teacher (Sec. 3.1): its values and policies, not the student's."""
    return TargetSource(frozen(net), value_mode=settings.distill_value, policy_mode=settings.distill_policy,
                        mcts_noise=settings.teacher_reanalyse_noise)


def uniform_positions(replay: PrioritizedReplay, n: int, rng: np.random.Generator) -> SampledPositions:
    """``n`` positions drawn uniformly over all transitions, importance weights 1 (Sec. 3.1: "sampling
    data uniformly"), whatever priorities the teacher's training left behind."""
    lengths = np.array([len(g) for g in replay.games])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = rng.integers(offsets[-1], size=n)
    game_index = np.searchsorted(offsets, flat, side="right") - 1
    return SampledPositions(game_ids=game_index + replay.first_id, steps=flat - offsets[game_index],
                            weights=np.ones(n, np.float32))


def distillation_batches(student: Learner, games: list[OfflineGame], teachers: list[EfficientZeroNet],
                         settings: PretrainSettings, rng: np.random.Generator) -> list[TrainBatch]:
    """B/m uniformly drawn positions per game; value and policy targets from that game's frozen teacher
    (the student contributes only its batch size and device)."""
    cfg = student.cfg
    per_game = max(1, cfg.batch_size // len(games))
    batches = []
    for game, teacher in zip(games, teachers, strict=True):
        positions = uniform_positions(game.replay, per_game, rng)
        source = teacher_source(teacher, settings)
        batches.append(make_batch(game.replay, positions, cfg, source, rng, student.device))
    return batches


def distillation_losses(student: Learner, games: list[OfflineGame], teachers: list[EfficientZeroNet],
                        settings: PretrainSettings, rng: np.random.Generator) -> list[Losses]:
    """The student's EfficientZero loss (Eq. 3) on each game's teacher-labelled batch, from one forward pass
    over the joint batch (as in Stage 2), so the student's batch norm sees every game evenly."""
    batches = distillation_batches(student, games, teachers, settings, rng)
    return split_losses(student.losses(concat_batches(batches)), [len(b.steps) for b in batches])


def distillation_update(student: Learner, games: list[OfflineGame], teachers: list[EfficientZeroNet],
                        settings: PretrainSettings, rng: np.random.Generator) -> dict[str, float]:
    """One student update on (1/m) sum_i L_i^ez with teacher targets (Sec. 3.1)."""
    losses = distillation_losses(student, games, teachers, settings, rng)
    total = weighted_total(losses, [1.0 / len(games)] * len(games))
    stats = student.step(total)
    out = {"total": float(total.detach()), **stats}
    for game, loss in zip(games, losses, strict=True):
        out.update({f"{game.name}/{k}": v for k, v in loss.as_dict().items()})
    return out


class Pretraining:
    """Teachers one after the other, then the student; ``run`` returns the student or None when stopped."""

    def __init__(self, ctx: RunContext, model: EfficientZeroConfig, settings: PretrainSettings,
                 games: list[OfflineGame], legal_for_eval: np.ndarray) -> None:
        self.ctx, self.settings, self.games, self.legal_for_eval = ctx, settings, games, legal_for_eval
        self.teacher_cfg = model.model_copy(update={"training_steps": settings.teacher_steps})
        self.student_cfg = model.model_copy(update={"training_steps": settings.distill_steps})
        self.teachers: list[EfficientZeroNet] = []

    @property
    def total_steps(self) -> int:
        return len(self.games) * self.settings.teacher_steps + self.settings.distill_steps

    def _learner(self, cfg: EfficientZeroConfig, role: str) -> Learner:
        return build_learner(cfg, self.ctx.device, int(role_seeds(self.ctx.recipe.seed, role)[0]))

    def _teacher_net(self, state: dict[str, Any]) -> EfficientZeroNet:
        with torch.random.fork_rng(devices=[]):  # its initialisation is overwritten: leave the stream alone
            net = EfficientZeroNet(self.teacher_cfg).to(self.ctx.device)
        net.load_state_dict(state)
        return frozen(net)

    def state(self, phase: str, index: int, learner: Learner | None) -> dict[str, Any]:
        """``learner`` is None at a boundary: the next teacher (or the student) starts fresh."""
        return {"stage": "pretrain", "phase": phase, "index": index,
                "learner": {} if learner is None else learner.state_dict(),
                "teachers": [t.state_dict() for t in self.teachers],
                "offline": [priorities_state(g.replay) for g in self.games]}

    def _checkpoint(self, step: int, phase: str, index: int, learner: Learner | None) -> bool:
        """Save when due or stopping; True when the run must stop now."""
        ctx = self.ctx
        stop = ctx.should_stop(step)
        if ctx.checkpoint_due(step) or stop:
            ctx.save(step, self.state(phase, index, learner))
        return stop

    def run(self, saved: dict[str, Any] | None) -> EfficientZeroNet | None:
        ctx, s, m = self.ctx, self.settings, len(self.games)
        phase, index = ("teacher", 0) if saved is None else (saved["phase"], int(saved["index"]))
        if saved is not None:
            self.teachers = [self._teacher_net(t) for t in saved["teachers"]]
            for game, prio in zip(self.games, saved["offline"], strict=True):
                load_priorities(game.replay, prio)
        for i in range(index if phase == "teacher" else m, m):
            game = self.games[i]
            learner = self._learner(self.teacher_cfg, f"teacher-{i}")
            if saved is not None and saved["phase"] == "teacher" and i == index and saved["learner"]:
                learner.load_state_dict(saved["learner"])
            ctx.progress.update(phase=f"teacher {game.name}", total=s.teacher_steps)
            while learner.train_step < s.teacher_steps:
                stats = efficientzero_update(learner, game.replay, ctx.rng)
                step = i * s.teacher_steps + learner.train_step
                if learner.train_step % s.log_every == 0 or learner.train_step == s.teacher_steps:
                    ctx.logger.log(step, {f"xtra/teacher/{game.name}/{k}": v for k, v in stats.items()})
                ctx.progress.update(step=learner.train_step, updates=step)
                if learner.train_step < s.teacher_steps:
                    if self._checkpoint(step, "teacher", i, learner):
                        return None
                    continue
                self.teachers.append(frozen(learner.net))
                after = ("teacher", i + 1) if i + 1 < m else ("distill", 0)
                if self._checkpoint(step, *after, None):
                    return None
        student = self._learner(self.student_cfg, "student")
        if saved is not None and saved["phase"] == "distill" and saved["learner"]:
            student.load_state_dict(saved["learner"])
        ctx.progress.update(phase="distil student", total=s.distill_steps)
        while student.train_step < s.distill_steps:
            stats = distillation_update(student, self.games, self.teachers, s, ctx.rng)
            step = m * s.teacher_steps + student.train_step
            if student.train_step % s.log_every == 0 or student.train_step == s.distill_steps:
                ctx.logger.log(step, {f"xtra/student/{k}": v for k, v in stats.items()})
            ctx.progress.update(step=student.train_step, updates=step)
            if student.train_step == s.distill_steps:
                break  # the final state is saved by the caller, with the student as the run's agent
            if self._checkpoint(step, "distill", 0, student):
                return None
        return student.net

    def final_state(self, student: EfficientZeroNet) -> dict[str, Any]:
        """Stage 1's result: the student (also the run's agent, for zero-shot ``xfer eval``)."""
        return {"stage": "pretrained", "student": agent_state(student, self.student_cfg, self.legal_for_eval),
                "agent": agent_state(student, self.student_cfg, self.legal_for_eval),
                "offline": [priorities_state(g.replay) for g in self.games]}


def load_student(state: dict[str, Any], device: torch.device) -> EfficientZeroNet:
    from xfer.muzero.agent import load_net

    return load_net(state, device)[0]
