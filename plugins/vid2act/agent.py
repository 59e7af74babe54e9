"""The Stage 2 student of Vid2Act (paper Sections 4.3–4.4, Eq. 5–9, Algorithm 1) on the DreamerV2 backbone.

:class:`Vid2ActAgent` is a :class:`~xfer.dreamer.agent.DreamerAgent` (a student world model F_φ' from scratch,
with a reward head) plus, through the backbone's seams:

- ``add_world_model_term``: α·L_distill (Eq. 6) joins the world-model loss, which with the backbone's
  reconstruction, reward and β·KL terms is Eq. 7; F_distill and F_weight are trained by the world-model
  optimiser. The frozen teacher transits the student's previous posterior under every label k.
- ``actor_extra_dim`` / ``actor_extra`` (Eq. 8): the actor reads concat(e_t, h) where h is the action replay
  decoder's last hidden activation (50-d, detached; authors' code) for the label k* with the highest weight.
  In imagination k* is picked per start state — the argmax of that state's weights in the same update's
  distillation — and held for the whole horizon (Algorithm 1, line 10; authors' code). At acting time the
  teacher steps from the student's previous latent under every k, F_weight scores each against the new
  posterior, the argmax picks k*, and z is sampled (Algorithm 1, lines 19–21).

Ablations: ``uniform_weights`` (w_k = 1/N; k* is then drawn uniformly at random per start state / acting
step, because equal weights select nothing), ``action_replay: false`` (no extra actor input), a subset of the
teacher's labels. G_θ is frozen by default (paper); ``train_vae_in_transfer`` keeps training it on source
batches with its own optimiser (authors' code) — give :attr:`source_batches` a sampler then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from xfer_plugins.vid2act.config import TransferConfig
from xfer_plugins.vid2act.distill import DomainSelector
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
                                       transfer.uniform_weights).to(self.device)
        self.add_world_model_term(self._distill_term, self.selector.parameters())
        if transfer.action_replay:
            self.actor_extra = self._replay_extra
        self.vae_opt: torch.optim.Optimizer | None = None
        self.source_batches: Callable[[], Mapping[str, Any]] | None = None
        if transfer.train_vae_in_transfer:
            self.teacher.replay.requires_grad_(True).train()
            self.vae_opt = torch.optim.Adam(self.teacher.replay.parameters(), lr=vae_lr)
        self._start_labels: Tensor | None = None  # k* (positions in self.labels) per imagination start state
        self._acting: tuple[AgentState | None, Tensor | None] | None = None
        self.acting_counts = torch.zeros(len(self.labels), dtype=torch.long)
        self._last_acting: dict[str, float] = {}

    # -- Eq. 5–7: domain-selective distillation ------------------------------------------------------------
    def teacher_states(self, post: LatentState, action: Tensor, is_first: Tensor) -> LatentState:
        """s_t^k for every selected label: the teacher's prior step from (e_{t−1}, a_{t−1}), [K, B, L, …]."""
        prev, prev_action = shifted_previous(post, action, is_first)
        return self.teacher.transit(prev, prev_action, self.labels)

    def _distill_term(self, out: WorldModelOutputs, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """α·L_distill (Eq. 6) for Eq. 7, on the student's posterior features e_t (authors' code: posterior
        concat(stoch, deter)); also fixes k* per state for this update's imagination."""
        teacher = self.teacher_states(out.post, batch["action"], batch["is_first"])
        result = self.selector(self.teacher.world_model.rssm.feat(teacher), out.feat)
        self._start_labels = self._choose(result.weights).flatten()
        metrics = {"vid2act/distill_loss": result.loss.detach(),
                   "vid2act/weight_sum": result.used.sum(0).mean()}
        fractions = torch.bincount(self._start_labels, minlength=len(self.labels)).float()
        fractions = fractions / self._start_labels.numel()
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
        """The backbone's ``ActorExtraFactory``: fix k* for the ``start`` states, then map each imagined (or
        acted-from) feature to the replay decoder's hidden activation for (e, z, k*)."""
        positions = self._acting_labels(start) if self._acting is not None else self._start_labels
        count = start.deter.shape[0]
        if positions is None or positions.shape[0] != count:
            raise XferError("Vid2Act's label selection has no weights for these start states",
                            hint="imagine from the outputs of the same update's world-model step")
        index = torch.as_tensor(self.labels, device=self.device)[positions]
        label = self.teacher.labels(index)
        replay = self.teacher.replay
        return lambda feat: replay.replay_features(feat, label)

    @torch.no_grad()
    def _acting_labels(self, post: LatentState) -> Tensor:
        """Algorithm 1, line 20: the teacher transits the student's previous latent e_{t−1} with a_{t−1} under
        every label; F_weight scores each s_t^k against the new posterior e_t; k* is the argmax."""
        state, is_first = self._acting  # type: ignore[misc]
        count = post.deter.shape[0]
        rssm = self.world_model.rssm
        if state is None:
            prev = rssm.initial(count, self.device)
            action = torch.zeros(count, self.act_dim, device=self.device)
        else:
            prev, action = state.latent, state.action
        if is_first is not None:
            prev, action = rssm.reset(prev, action.float(), is_first)
        teacher = self.teacher.transit(prev, action, self.labels)
        weights = self.selector.weights(self.teacher.world_model.rssm.feat(teacher), rssm.feat(post))
        positions = self._choose(weights)
        self.acting_counts += torch.bincount(positions.cpu(), minlength=len(self.labels))
        return positions

    @torch.no_grad()
    def policy(self, obs: Mapping[str, Any], state: AgentState | None, explore: bool
               ) -> tuple[Tensor, AgentState]:
        """The backbone's acting step, with the previous state kept for the acting-time label selection."""
        is_first = obs.get("is_first")
        flags = None if is_first is None else torch.as_tensor(is_first, device=self.device).flatten().float()
        self._acting = (state, flags)
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
        """Eq. 7 (backbone loss + α·L_distill); with ``train_vae_in_transfer`` also one G_θ step on a source
        batch (authors' code; the paper keeps G_θ frozen)."""
        metrics, out = super().train_world_model(batch)
        if self.vae_opt is not None:
            metrics.update(self._train_replay())
        return metrics, out

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """The backbone's update (Eq. 7 world model, then Eq. 8–9 behaviour), plus the acting label shares."""
        metrics = super().train_step(batch)
        metrics.update(self._acting_metrics())
        return metrics

    def _train_replay(self) -> dict[str, Tensor]:
        if self.source_batches is None:
            raise XferError("train_vae_in_transfer needs source batches (Vid2ActAgent.source_batches)")
        batch = self.to_tensors(self.source_batches())
        with torch.no_grad():
            out = self.teacher.observe(batch)
        loss, metrics = self.teacher.replay_loss(out, batch)
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
