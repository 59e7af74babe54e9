"""The alternation driver of CoWorld (Algorithm 1), as the ``learner`` of the shared online loop.

:func:`xfer.dreamer.loop.train_online` acts in the source simulator(s) and calls
:meth:`CoWorldLearner.train_step` whenever a source update is due. The learner

1. trains the active source with plain DreamerV2 while that source is warming up (Algorithm 1 line 3);
2. once every source is warm, runs a *target phase* — optional world-model-only pretraining of the target
   the first time (Appendix C step 1; with ``select_with: pretrained`` the target encoder is copied for the
   source selection right after it), then ``target_iterations`` target updates (Algorithm 1 lines 5–13:
   Eq. 3 world model with Stage A, DreamerV2 actor (Eq. 7) and critic with Stage C (Eq. 6)) on batches of the
   offline dataset — before the first source update of every round of ``source_iterations`` source
   environment steps, and once more after the last;
3. trains the active source with Stage B switched on once every source is warm and the first target phase
   has run (lines 15–25: Eq. 2 with Eq. 5, relabelled target batches from Eq. 4), the loop collecting new
   source data with the source policy.

All counters live in :meth:`state_dict`; the loop checkpoints only between its rounds, so a target phase is
never cut by a checkpoint and a resumed run continues exactly.

Several processes (:mod:`xfer.run.distributed`): every target batch (the world-model pretraining, the
target phase's updates, Stage B's relabelled batches) is this rank's share of the global batch
(:func:`~xfer.run.distributed.share_batch`), as the loop's source batches are, and every optimiser step
of the agents averages the gradients over the ranks, so all ranks keep the same parameters. The
multi-source selection reads the KL averaged over the ranks
(:class:`~xfer_plugins.coworld.alignment.StateAlignment`), so every rank selects the same source.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from xfer_plugins.coworld.agents import Stages, TargetData
from xfer_plugins.coworld.config import CoWorldConfig
from xfer_plugins.coworld.routing import SourceRouter

from xfer.dreamer.agent import DreamerAgent
from xfer.run.context import RunContext


def _prefixed(metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
    return {(key if key.startswith("coworld/") else prefix + key): float(value)
            for key, value in metrics.items()}


class CoWorldLearner:
    def __init__(self, cfg: CoWorldConfig, ctx: RunContext, target: DreamerAgent,
                 sources: Sequence[DreamerAgent], stages: Stages, router: SourceRouter,
                 target_data: TargetData) -> None:
        self.cfg, self.ctx, self.target, self.sources = cfg, ctx, target, list(sources)
        self.stages, self.router, self.target_data = stages, router, target_data
        self.target_phases = 0
        self.target_updates = 0
        self.round_robin = 0
        router.choose = self.choose_source

    # -- which source trains --------------------------------------------------------------------------------
    def choose_source(self) -> int:
        """The source for the next loop round after the warm-up (Appendix C step 4)."""
        if len(self.sources) == 1:
            return 0
        if self.cfg.multi_source.train_sources == "all":
            self.round_robin += 1
            return self.round_robin % len(self.sources)
        assert self.stages.selector is not None
        return self.stages.selector.phase_majority()

    # -- the loop's Learner protocol ------------------------------------------------------------------------
    def act(self, obs: Mapping[str, np.ndarray], state: Any, explore: bool) -> tuple[np.ndarray, Any]:
        """The active source acts (random during its own prefill, so every source of a multi-source run gets
        one); padded action entries are zeroed by the router."""
        index = self.router.active
        if self.router.steps[index] < self.cfg.prefill:
            return self.router.random_actions(self.ctx.rng), state
        return self.sources[index].act(obs, state, explore)

    @property
    def co_training(self) -> bool:
        """Every source is warm and the first target phase has run: Stage B is on from here (Algorithm 1)."""
        return self.router.all_warm and self.target_phases > 0

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        index = self.router.active
        self._maybe_target_phase()
        for i, term in enumerate(self.stages.reward_terms):
            term.enabled = i == index and self.co_training
        metrics = _prefixed(self.sources[index].train_step(batch), "source/")
        self._maybe_target_phase()
        return metrics

    # -- target phases --------------------------------------------------------------------------------------
    def _maybe_target_phase(self) -> None:
        if not self.router.all_warm or self.target_phases >= self.cfg.rounds:
            return
        if self.target_phases <= self.router.co_training_steps() // self.cfg.source_iterations:
            self.run_target_phase()

    def run_target_phase(self) -> None:
        cfg, ctx, stages = self.cfg, self.ctx, self.stages
        if self.target_phases == 0 and cfg.target_pretrain_updates:
            self._pretrain_target_world_model(cfg.target_pretrain_updates)
        if (self.target_phases == 0 and stages.alignment is not None and stages.selector is not None
                and cfg.multi_source.select_with == "pretrained"):
            stages.alignment.select_with(copy.deepcopy(self.target.world_model.encoder))
        if stages.selector is not None:
            stages.selector.start_phase()
        sums: dict[str, float] = {}
        count = 0
        for update in range(1, cfg.target_iterations + 1):
            for key, value in self.target.train_step(self._target_batch()).items():
                sums[key] = sums.get(key, 0.0) + value
            count += 1
            self.target_updates += 1
            if update % ctx.recipe.logging.every == 0 or update == cfg.target_iterations:
                self._log_target({key: value / count for key, value in sums.items()})
                sums, count = {}, 0
        self.target_phases += 1
        ctx.say(f"coworld: target phase {self.target_phases}/{cfg.rounds} done "
                f"({self.target_updates} target updates, source steps {self.router.steps})")

    def _target_batch(self) -> dict[str, Any]:
        """This rank's share of a global target batch (the whole batch on one process)."""
        return self.target_data.share()

    def _pretrain_target_world_model(self, updates: int) -> None:
        """Appendix C step 1 (and the authors' code): the target world model alone, without alignment."""
        alignment = self.stages.alignment
        if alignment is not None:
            alignment.enabled = False
        for _ in range(updates):
            metrics, _ = self.target.train_world_model(self._target_batch())
        if alignment is not None:
            alignment.enabled = True
        self._log_target({f"pretrain/{key}": float(value) for key, value in metrics.items()})

    def _log_target(self, means: Mapping[str, float]) -> None:
        metrics = _prefixed(means, "target/")
        metrics["coworld/target_updates"] = float(self.target_updates)
        metrics["coworld/target_phase"] = float(self.target_phases)
        if self.stages.selector is not None:
            metrics.update(self.stages.selector.log_metrics())
        step = self.router.total_steps
        self.ctx.logger.log(step, metrics, env_steps=step, updates=self.target_updates)

    # -- checkpoints ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        encoder = None if self.stages.alignment is None else self.stages.alignment.selection_encoder
        return {
            "target": self.target.state_dict(),
            "sources": [source.state_dict() for source in self.sources],
            "eta": [term.eta.state_dict() for term in self.stages.reward_terms],
            "selector": None if self.stages.selector is None else self.stages.selector.state_dict(),
            "selection_encoder": None if encoder is None else encoder.state_dict(),
            "counters": {"target_phases": self.target_phases, "target_updates": self.target_updates,
                         "round_robin": self.round_robin},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.target.load_state_dict(state["target"])
        for source, saved in zip(self.sources, state["sources"], strict=True):
            source.load_state_dict(saved)
        for term, saved in zip(self.stages.reward_terms, state["eta"], strict=True):
            term.eta.load_state_dict(saved)
        if self.stages.selector is not None:
            self.stages.selector.load_state_dict(state["selector"])
        if state.get("selection_encoder") is not None and self.stages.alignment is not None:
            encoder = copy.deepcopy(self.target.world_model.encoder)
            encoder.load_state_dict(state["selection_encoder"])
            self.stages.alignment.select_with(encoder)
        counters = state["counters"]
        self.target_phases = int(counters["target_phases"])
        self.target_updates = int(counters["target_updates"])
        self.round_robin = int(counters["round_robin"])
        self.target_data.started = self.target_updates
