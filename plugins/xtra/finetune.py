"""XTRA Stage 2, concurrent cross-task finetuning (Xu et al. 2023, Sec. 3.2, Eq. 1-2, Appendix B, D).

Each update takes a target batch of B positions from the online replay and, unless the "w.o. cross-task"
ablation is on, B/n positions from each of the n offline games' datasets (Appendix D: 1:1 target to
offline, "2x effective batch"). Target-task targets are reanalysed by the learner's target network
(Table 4: reanalysed policy ratio 1). Offline targets (``offline_targets``): ``reanalyse`` (default)
recomputes their policies by a fresh search of the target network too; ``stored`` uses the search
policies stored in the datasets, as the authors' code does (its offline batches are built by
``prepare_imitation_learning`` from the stored visit counts, never reanalysed); the datasets must then
hold them (``search_policy``, see :mod:`.offline`). In both, offline values are n-step returns
bootstrapped by the target network (the authors' imitation targets instead add the stored root value at t
to the 5-step reward sum, which xfer does not copy). The loss is Eq. 1,

    L^adapt = L^ez(M) + sum_i eta_i L^ez(M_i),

with L^ez EfficientZero's loss (App. A, Eq. 3: 0.25 value, 1 policy, 1 reward, 2 consistency; the
policy softmax restricted to each game's legal actions) and eta_i from :mod:`.task_weights` (Eq. 2,
App. B): on counting steps the flat gradients of L^ez(M) and of each L^ez(M_i) over all trainable
parameters are compared by cosine. ``loss_normalisation`` (the balance of the terms): ``code`` (default,
the authors' code and Appendix D's "2x effective batch") takes one mean over the joint batch,
(B L_t + sum eta_i B_i L_i) / (B + sum B_i), so the target is half of the loss and the total is on the
scale of one task's loss; ``paper`` reads Eq. 1 literally, L_t + sum eta_i L_i, which gives n offline
games n/(n+1) of the loss and a total about n+1 times one task's.

As in the authors' code, all batches go through the network in one forward pass (:mod:`.joint`), so
batch-norm statistics are shared (the target is half of every batch-norm batch); per-task losses and
their Eq. 2 gradients are taken from that pass's per-task slices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn
from xfer_plugins.xtra.config import FinetuneSettings
from xfer_plugins.xtra.joint import concat_batches, split_losses
from xfer_plugins.xtra.offline import load_priorities, priorities_state
from xfer_plugins.xtra.pretrain import OfflineGame
from xfer_plugins.xtra.task_weights import TaskWeightSchedule, cosine_similarities

from xfer.errors import XferError
from xfer.muzero.batch_workers import BatchWorkers
from xfer.muzero.learner import Learner, weighted_total
from xfer.muzero.replay import PrioritizedReplay
from xfer.muzero.targets import BatchJob, TargetSource, TrainBatch, gather_job, make_batch
from xfer.run.context import RunContext


def freeze_representation(learner: Learner) -> None:
    """Keep the representation h fixed (Fig. 7b ablation): no gradients, and batch norm in eval mode
    even while the learner puts the rest of the network in training mode."""
    rep = learner.net.representation
    rep.requires_grad_(False)

    def stay_eval(mode: bool = True) -> nn.Module:
        return nn.Module.train(rep, False)

    rep.train = stay_eval  # type: ignore[method-assign]
    rep.train(False)


def reset_priorities(replay: PrioritizedReplay) -> None:
    """Fresh, equal priorities (Stage 2 starts its own prioritised sampling of the offline data)."""
    replay.priorities = [np.ones_like(p) for p in replay.priorities]
    replay.max_priority = 1.0


def check_offline_targets(games: list[OfflineGame], settings: FinetuneSettings) -> None:
    """``offline_targets: stored`` needs every offline dataset to hold search policies."""
    if settings.offline_targets != "stored" or not settings.cross_task:
        return
    for game in games:
        if not game.searched:
            raise XferError(f"xtra: finetune.offline_targets is 'stored' but the dataset of {game.name!r} "
                            "stores no search policies (key 'search_policy')",
                            hint="set xtra.finetune.offline_targets: reanalyse, or export an efficientzero "
                                 "run's replay: xfer data export-replay RUNDIR --out DIR")


class CrossTaskUpdate:
    """The Eq. 1 update, called once per training step by :class:`xfer.muzero.loop.OnlineLoop`."""

    def __init__(self, ctx: RunContext, learner: Learner, target: PrioritizedReplay, games: list[OfflineGame],
                 settings: FinetuneSettings, workers: BatchWorkers | None = None) -> None:
        self.ctx, self.learner, self.target, self.settings = ctx, learner, target, settings
        self.workers = workers
        self.games = games if settings.cross_task else []
        check_offline_targets(self.games, settings)
        tw = settings.task_weights
        self.schedule = TaskWeightSchedule(len(self.games), tw.cycle, tw.count_steps, tw.threshold, tw.warmup,
                                           tw.enabled)
        total = settings.offline_batch_size or learner.cfg.batch_size
        self.offline_batch = max(1, total // max(1, len(self.games)))
        self.updates = 0

    def _source(self, offline: bool) -> TargetSource:
        stored = offline and self.settings.offline_targets == "stored"
        return TargetSource(self.learner.target_net, policy_mode="stored" if stored else "mcts")

    def _sample(self, replay: PrioritizedReplay, size: int, offline: bool) -> tuple[Any, np.ndarray | None]:
        """Positions by priority and their ages: EZ's off-policy correction (Sec. 4.3) on the target's own
        replay; offline games keep the full TD horizon (xfer: another agent's data, not older data)."""
        positions = replay.sample(size, self.ctx.rng, replay.beta(self.learner.train_step))
        return positions, None if offline else replay.ages(positions.game_ids, positions.steps)

    def _batch(self, replay: PrioritizedReplay, size: int, offline: bool) -> TrainBatch:
        """One batch built in this process."""
        positions, ages = self._sample(replay, size, offline)
        learner = self.learner
        return make_batch(replay, positions, learner.cfg, self._source(offline), self.ctx.rng, learner.device,
                          ages=ages)

    def _batches(self) -> list[TrainBatch]:
        """The target's batch, then each offline game's: built here, or by the reanalyse workers."""
        learner, rng, cfg = self.learner, self.ctx.rng, self.learner.cfg
        parts = [(self.target, cfg.batch_size, False)]
        parts += [(g.replay, self.offline_batch, True) for g in self.games]
        sources = [self._source(offline) for _, _, offline in parts]
        if self.workers is None:
            return [self._batch(*part) for part in parts]

        def gather() -> list[BatchJob]:
            jobs = []
            for (replay, size, offline), source in zip(parts, sources, strict=True):
                positions, ages = self._sample(replay, size, offline)
                jobs.append(gather_job(replay, positions, cfg, source, rng, ages=ages))
            return jobs

        return self.workers.next_batches(sources, learner.target_version, gather, rng, learner.device)

    def weights(self) -> list[float]:
        """Loss weights of [target, offline games...]: joint-batch mean (``code``) or Eq. 1 (``paper``)."""
        eta = [float(e) for e in self.schedule.weights]
        if self.settings.loss_normalisation == "paper":
            return [1.0, *eta]
        b_t, b_o = self.learner.cfg.batch_size, self.offline_batch
        joint = b_t + b_o * len(self.games)
        return [b_t / joint, *(e * b_o / joint for e in eta)]

    def __call__(self) -> dict[str, float]:
        learner, step = self.learner, self.updates
        batches = self._batches()
        losses = split_losses(learner.losses(concat_batches(batches)), [len(b.steps) for b in batches])
        stats: dict[str, float] = {}
        if self.schedule.counting(step):
            target_grad = learner.task_gradient(losses[0].total)
            task_grads = [learner.task_gradient(loss.total) for loss in losses[1:]]
            sims = cosine_similarities(target_grad, task_grads)
            self.schedule.observe(step, sims)
            stats.update({f"xtra/cos/{g.name}": float(c) for g, c in zip(self.games, sims, strict=True)})
        total = weighted_total(losses, self.weights())
        stats.update(learner.step(total))
        replays = [self.target] + [g.replay for g in self.games]
        for replay, batch, loss in zip(replays, batches, losses, strict=True):
            replay.update_priorities(batch.game_ids, batch.steps, loss.priorities)
        self.updates += 1
        stats.update(losses[0].as_dict())  # the target task's terms
        stats["target_total"], stats["total"] = stats["total"], float(total.detach())
        for game, loss, eta in zip(self.games, losses[1:], self.schedule.weights, strict=True):
            stats[f"xtra/eta/{game.name}"] = float(eta)
            stats[f"xtra/offline/{game.name}/total"] = loss.as_dict()["total"]
        return stats

    def state_dict(self) -> dict[str, Any]:
        state = {"stage": "finetune", "schedule": self.schedule.state_dict(), "updates": self.updates,
                 "offline": [priorities_state(g.replay) for g in self.games]}
        if self.workers is not None:
            state["batch_workers"] = self.workers.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.schedule.load_state_dict(state["schedule"])
        self.updates = int(state["updates"])
        for game, prio in zip(self.games, state["offline"], strict=True):
            load_priorities(game.replay, prio)
        if self.workers is not None and "batch_workers" in state:
            self.workers.load_state_dict(state["batch_workers"])
