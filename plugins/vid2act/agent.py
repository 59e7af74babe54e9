"""The Stage 2 student of Vid2Act (paper Sections 4.3–4.4, Eq. 5–9, Algorithm 1) on the DreamerV2 backbone.

:class:`Vid2ActAgent` is a :class:`~xfer.dreamer.agent.DreamerAgent` (a student world model F_φ' from scratch,
with a reward head) plus, through the backbone's seams:

- ``add_world_model_term``: α·L_distill (Eq. 6) joins the world-model loss, which with the backbone's
  reconstruction, reward and β·KL terms is Eq. 7; F_distill and F_weight are trained by the world-model
  optimiser. The frozen teacher transits the student's previous posterior e_{t−1} with a_{t−1} under every
  label k; Eq. 5–6 compare it with the student's *predicted* state e_t ~ p(e_{t−1}, a_{t−1}) (Sec. 4.3;
  ``student_state: posterior`` = the authors' code). ``vid2act/distill_ratio`` logs α·L_distill over the
  backbone's part of Eq. 7.
- ``actor_extra_dim`` / ``actor_extra`` (Eq. 8): the actor reads concat(e_t, h) where h is the action replay
  decoder's last hidden activation (50-d, detached; authors' code) for the label k* with the highest weight,
  re-selected at every imagined step by default (Algorithm 1, lines 9–11), reading the teacher's state
  s_t^{k*} by default; at acting time k* comes from the teacher's step from the previous posterior and z = 0
  when acting greedily. See :mod:`xfer_plugins.vid2act.guidance`.

Ablations: ``uniform_weights`` (w_k = 1/N; k* is then drawn uniformly at random, because equal weights select
nothing), ``action_replay: false`` (no extra actor input), a subset of the teacher's labels. G_θ is frozen by
default (paper); ``train_vae_in_transfer`` keeps training it on F_distill(teacher features of source batches),
detached, with its own optimiser (authors' code) — give :attr:`source_batches` a sampler then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from xfer_plugins.vid2act.config import TransferConfig
from xfer_plugins.vid2act.distill import DomainSelector
from xfer_plugins.vid2act.guidance import Guide, ReplayGuidance
from xfer_plugins.vid2act.teacher import MixtureTeacher, shifted_previous

from xfer.dreamer.agent import AgentState, DreamerAgent
from xfer.dreamer.behavior import ActorExtraFn
from xfer.dreamer.config import DreamerConfig
from xfer.dreamer.world_model import Batch, WorldModelOutputs
from xfer.errors import XferError
from xfer.nets.rssm import LatentState


def student_model_config(model: DreamerConfig, beta: float) -> DreamerConfig:
    """The student's backbone configuration: the shared sizes with β of Eq. 7 as KL scale."""
    return model.model_copy(update={"kl_scale": beta})


class Vid2ActAgent(DreamerAgent):
    def __init__(self, obs_shapes: Mapping[str, tuple[int, ...]], act_dim: int, discrete: bool,
                 cfg: DreamerConfig, teacher: MixtureTeacher, transfer: TransferConfig,
                 labels: Sequence[int] | None = None, device: str | torch.device = "cpu",
                 vae_lr: float = 1e-3) -> None:
        """``cfg`` is the student's backbone configuration (see :func:`student_model_config`); ``labels`` the
        teacher labels to distil from (default: all of them, in the teacher's order)."""
        extra_dim = teacher.replay.hidden_dim if transfer.action_replay else 0
        super().__init__(obs_shapes, act_dim, discrete, cfg, actor_extra_dim=extra_dim, device=device)
        if teacher.feat_dim != self.world_model.feat_dim:
            raise XferError(f"the teacher's latent features have size {teacher.feat_dim} but the student's "
                            f"have {self.world_model.feat_dim}",
                            hint="teacher and student need the same model sizes")
        if act_dim > teacher.act_dim:
            raise XferError(f"the target's action size {act_dim} exceeds the teacher's {teacher.act_dim}")
        self.transfer = transfer
        self.labels = list(range(teacher.num_labels)) if labels is None else list(labels)
        if not self.labels:
            raise XferError("Vid2Act needs at least one source label in Stage 2")
        self.tasks = [teacher.tasks[k] for k in self.labels]
        self.teacher = teacher.to(self.device).freeze()
        self.selector = DomainSelector(self.world_model.feat_dim, transfer.weight_floor,
                                       transfer.uniform_weights, transfer.distill_reduction).to(self.device)
        self.add_world_model_term(self._distill_term, self.selector.parameters())
        self.guidance = ReplayGuidance(self.teacher, self.selector, self.labels, transfer, self._choose)
        if transfer.action_replay:
            self.actor_extra = self._replay_extra
        self.vae_opt: torch.optim.Optimizer | None = None
        self.source_batches: Callable[[], Mapping[str, Any]] | None = None
        if transfer.train_vae_in_transfer:
            self.teacher.replay.requires_grad_(True).train()
            self.vae_opt = torch.optim.Adam(self.teacher.replay.parameters(), lr=vae_lr)
        self._start: Guide | None = None  # k* and s^k at the imagination start states of this update
        self._acting: tuple[AgentState | None, Tensor | None, bool] | None = None
        self.acting_counts = torch.zeros(len(self.labels), dtype=torch.long)
        self._last_acting: dict[str, float] = {}

    # -- Eq. 5–7: domain-selective distillation ------------------------------------------------------------
    def teacher_states(self, post: LatentState, action: Tensor, is_first: Tensor) -> LatentState:
        """s_t^k for every selected label: the teacher's prior step from (e_{t−1}, a_{t−1}), [K, B, L, …]."""
        prev, prev_action = shifted_previous(post, action, is_first)
        return self.teacher.transit(prev, prev_action, self.labels)

    def student_state(self, out: WorldModelOutputs) -> LatentState:
        """e_t of Eq. 5–6 in training: the predicted state p(e_{t−1}, a_{t−1}) (paper, Sec. 4.3), i.e. the
        prior step from the previous posterior, or the posterior (``student_state: posterior``, authors'
        code)."""
        return out.prior if self.transfer.student_state == "prior" else out.post

    def _distill_term(self, out: WorldModelOutputs, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """α·L_distill (Eq. 6) for Eq. 7, between the teacher's s_t^k and the student's e_t
        (:meth:`student_state`); also fixes k* and s_t^k per state for this update's imagination."""
        teacher = self.teacher.world_model.rssm.feat(
            self.teacher_states(out.post, batch["action"], batch["is_first"]))
        result = self.selector(teacher, self.world_model.rssm.feat(self.student_state(out)))
        start = self._choose(result.weights).flatten()
        self._start = Guide(start, teacher.flatten(1, -2))
        metrics = {"vid2act/distill_loss": result.loss.detach(),
                   "vid2act/weight_sum": result.used.sum(0).mean()}
        fractions = torch.bincount(start, minlength=len(self.labels)).float() / start.numel()
        for i, task in enumerate(self.tasks):
            metrics[f"vid2act/weight/{task}"] = result.weights[i].mean()
            metrics[f"vid2act/label_used/{task}"] = fractions[i]
        return self.transfer.alpha * result.loss, metrics

    def _choose(self, weights: Tensor) -> Tensor:
        """k* per state (positions into ``self.labels``): the argmax weight, or uniform draws under
        ``uniform_weights``."""
        if self.transfer.uniform_weights:
            return torch.randint(len(self.labels), weights.shape[1:], device=weights.device)
        return DomainSelector.select(weights)

    # -- Eq. 8: generative action replay ---------------------------------------------------------------------
    def _replay_extra(self, start: LatentState, cond: Tensor | None) -> ActorExtraFn:
        """The backbone's ``ActorExtraFactory``: at acting time one step guided by Algorithm 1's line 20
        (:meth:`_acting_guide`); in imagination a rollout from this update's start states
        (:meth:`ReplayGuidance.rollout`)."""
        if self._acting is not None:
            guide, sample = self._acting_guide(start), self._acting[2]
            return lambda state, prev_action: self.guidance.features(state, guide, sample)
        count = start.deter.shape[0]
        if self._start is None or self._start.positions.shape[0] != count:
            raise XferError("Vid2Act's label selection has no weights for these start states",
                            hint="imagine from the outputs of the same update's world-model step")
        return self.guidance.rollout(self._start)

    @torch.no_grad()
    def _acting_guide(self, post: LatentState) -> Guide:
        """Algorithm 1, line 20: the teacher transits the student's previous latent e_{t−1} with a_{t−1} under
        every label; F_weight scores each s_t^k against the new posterior e_t (line 19); k* is the argmax."""
        state, is_first, _ = self._acting  # type: ignore[misc]
        count = post.deter.shape[0]
        rssm = self.world_model.rssm
        if state is None:
            prev = rssm.initial(count, self.device)
            action = torch.zeros(count, self.act_dim, device=self.device)
        else:
            prev, action = state.latent, state.action
        if is_first is not None:
            prev, action = rssm.reset(prev, action.float(), is_first)
        guide = self.guidance.select(self.guidance.teacher_feat(prev, action), rssm.feat(post))
        self.acting_counts += torch.bincount(guide.positions.cpu(), minlength=len(self.labels))
        return guide

    @torch.no_grad()
    def policy(self, obs: Mapping[str, Any], state: AgentState | None, explore: bool
               ) -> tuple[Tensor, AgentState]:
        """The backbone's acting step, with the previous state kept for the acting-time label selection and
        z = 0 in the replay when not ``explore`` (deterministic greedy acting)."""
        is_first = obs.get("is_first")
        flags = None if is_first is None else torch.as_tensor(is_first, device=self.device).flatten().float()
        self._acting = (state, flags, explore)
        try:
            return super().policy(obs, state, explore)
        finally:
            self._acting = None

    def label_fractions(self, counts: Tensor, prefix: str) -> dict[str, float]:
        """``{prefix/<task>: share}`` of the label counts ``counts`` [K] (empty when nothing was counted)."""
        total = int(counts.sum())
        if total == 0:
            return {}
        return {f"{prefix}/{task}": float(counts[i]) / total for i, task in enumerate(self.tasks)}

    def _acting_metrics(self) -> dict[str, float]:
        """``vid2act/act_label/<task>``: the share of acting steps since the previous update that used each
        label; carried forward while no acting happened (the loop averages per-update metrics over its logging
        window, so every update reports them once acting has begun)."""
        fresh = self.label_fractions(self.acting_counts, "vid2act/act_label")
        if fresh:
            self._last_acting = fresh
            self.acting_counts = torch.zeros_like(self.acting_counts)
        return dict(self._last_acting)

    # -- training ------------------------------------------------------------------------------------------
    def train_world_model(self, batch: Mapping[str, Any]) -> tuple[dict[str, Tensor], WorldModelOutputs]:
        """Eq. 7 (backbone loss + α·L_distill), logging ``vid2act/distill_ratio`` = α·L_distill over the
        backbone's part (reconstruction, reward, discount and β·KL); with ``train_vae_in_transfer`` also one
        G_θ step on a source batch (authors' code; the paper keeps G_θ frozen)."""
        metrics, out = super().train_world_model(batch)
        distill = self.transfer.alpha * metrics["vid2act/distill_loss"]
        metrics["vid2act/distill_ratio"] = distill / metrics["wm/loss"].abs().clamp_min(1e-8)
        if self.vae_opt is not None:
            metrics.update(self._train_replay())
        return metrics, out

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """The backbone's update (Eq. 7 world model, then Eq. 8–9 behaviour), plus the acting label shares."""
        metrics = super().train_step(batch)
        metrics.update(self._acting_metrics())
        metrics["vid2act/label_switch"] = self.guidance.switch_rate()
        return metrics

    def _train_replay(self) -> dict[str, Tensor]:
        """One G_θ step (Eq. 4) on a source batch, on F_distill(teacher posterior features), detached — the
        authors' code, which feeds the student's e_t to G_θ and pulls e_t toward F_distill(s_t^k)."""
        if self.source_batches is None:
            raise XferError("train_vae_in_transfer needs source batches (Vid2ActAgent.source_batches)")
        batch = self.to_tensors(self.source_batches())
        with torch.no_grad():
            out = self.teacher.observe(batch)
            feat = self.selector.distill(out.feat)
        loss, metrics = self.teacher.replay_loss(out, batch, feat)
        self.vae_opt.zero_grad(set_to_none=True)  # type: ignore[union-attr]
        loss.backward()
        self.vae_opt.step()  # type: ignore[union-attr]
        return metrics

    # -- checkpoints ---------------------------------------------------------------------------------------
    def _modules(self) -> dict[str, nn.Module]:
        modules = {**super()._modules(), "selector": self.selector}
        if self.vae_opt is not None:
            modules["replay_vae"] = self.teacher.replay
        return modules

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "acting_counts": self.acting_counts.clone(),
                "last_acting": dict(self._last_acting)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.acting_counts = torch.as_tensor(state["acting_counts"]).clone()
        self._last_acting = {key: float(value) for key, value in state["last_acting"].items()}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = super()._optimizers()
        if self.vae_opt is not None:
            opts["replay_vae"] = self.vae_opt
        return opts
