"""The DreamerV2 world model: observation codec, RSSM, reward and discount heads, and its loss (Eq. 2).

Batch convention (the standard Dreamer one): every key is [B, L, ...]; ``action[:, t]`` is the action that
led *to* observation t (zero where ``is_first``); ``reward[:, t]`` the reward received with observation t;
``is_terminal[:, t]`` says observation t ended the episode. ``image`` is uint8 [B, L, 64, 64, C], ``state``
float [B, L, D], and an optional ``cond`` float [B, L, K] or [B, K] carries Vid2Act's task label.

Seams for methods:
- :meth:`WorldModel.loss` returns ``(loss, metrics, outputs)``; :class:`WorldModelOutputs` holds ``embed``
  (CoWorld's state alignment reads it), ``post``/``prior`` states and ``feat`` so a caller can add terms
  before the optimiser step (see :meth:`xfer.dreamer.agent.DreamerAgent.add_world_model_term`).
- ``cond_dim``: the condition enters the encoder, the RSSM recurrence and every head (see
  :mod:`xfer.dreamer.observation` and :mod:`xfer.nets.rssm`).
- :meth:`WorldModel.imagined_reward` is the default reward of imagination (reward head, minus the ensemble
  disagreement penalty when ``ensemble_size`` > 0); agents accept an override.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xfer.dreamer.config import DreamerConfig
from xfer.dreamer.ensemble import LatentEnsemble
from xfer.dreamer.observation import ObsDecoder, ObsEncoder
from xfer.nets.mlp import MLP
from xfer.nets.rssm import RSSM, LatentState

Batch = Mapping[str, Tensor]


@dataclass
class WorldModelOutputs:
    """What the world-model pass computed on a [B, L] batch."""

    embed: Tensor  # [B, L, E] flattened encoder output
    post: LatentState  # [B, L, ...] posterior states
    prior: LatentState  # [B, L, ...] prior states (same deter)
    feat: Tensor  # [B, L, F] posterior features concat(stoch, deter)
    cond: Tensor | None  # [B, L, K] or None


def sequence_cond(batch: Batch, length: int) -> Tensor | None:
    """The batch's ``cond`` as [B, L, K] (a [B, K] label is held over time), or None."""
    cond = batch.get("cond")
    if cond is None:
        return None
    cond = cond.float()
    return cond.unsqueeze(1).expand(-1, length, -1) if cond.dim() == 2 else cond


class WorldModel(nn.Module):
    def __init__(self, obs_shapes: Mapping[str, tuple[int, ...]], act_dim: int, cfg: DreamerConfig,
                 cond_dim: int = 0) -> None:
        super().__init__()
        self.cfg, self.act_dim, self.cond_dim = cfg, act_dim, cond_dim
        self.encoder = ObsEncoder(obs_shapes, cfg, cond_dim)
        self.rssm = RSSM(self.encoder.embed_dim, act_dim, cfg.deter, cfg.stoch, cfg.classes, cfg.hidden,
                         cond_dim, cfg.latent_min_std, cfg.gru_layer_norm)
        feat_dim = self.rssm.feat_dim
        self.decoder = ObsDecoder(obs_shapes, feat_dim, cfg, cond_dim)
        self.reward_head = MLP(feat_dim + cond_dim, 1, cfg.mlp_units, cfg.reward_layers)
        self.discount_head = (MLP(feat_dim + cond_dim, 1, cfg.mlp_units, cfg.discount_layers)
                              if cfg.predict_discount else None)
        self.ensemble = (LatentEnsemble(feat_dim, act_dim, self.rssm.stoch_dim, cfg.ensemble_size,
                                        cfg.mlp_units, cfg.ensemble_layers) if cfg.ensemble_size else None)

    @property
    def feat_dim(self) -> int:
        return self.rssm.feat_dim

    # -- forward pieces ----------------------------------------------------------------------------------
    def encode(self, obs: Batch, cond: Tensor | None = None) -> Tensor:
        """Embedding of raw observations (uint8 images) with any leading shape."""
        return self.encoder(obs, cond)

    def observe(self, batch: Batch, state: LatentState | None = None) -> WorldModelOutputs:
        """Encode and filter a [B, L] batch."""
        cond = sequence_cond(batch, batch["action"].shape[1])
        embed = self.encode(batch, cond)
        post, prior = self.rssm.observe(embed, batch["action"].float(), batch["is_first"], state, cond)
        return WorldModelOutputs(embed, post, prior, self.rssm.feat(post), cond)

    @staticmethod
    def _with_cond(feat: Tensor, cond: Tensor | None) -> Tensor:
        return feat if cond is None else torch.cat([feat, cond.expand(*feat.shape[:-1], -1)], -1)

    def reward(self, feat: Tensor, cond: Tensor | None = None) -> Tensor:
        """Mean predicted reward r̂(s) [...]."""
        return self.reward_head(self._with_cond(feat, cond)).squeeze(-1).float()

    def discount(self, feat: Tensor, cond: Tensor | None = None) -> Tensor:
        """Predicted discount γ̂ = γ·P(continue | s) [...], or γ without a discount head."""
        if self.discount_head is None:
            return torch.full(feat.shape[:-1], self.cfg.discount, device=feat.device)
        return self.cfg.discount * torch.sigmoid(self._discount_logits(feat, cond))

    def _discount_logits(self, feat: Tensor, cond: Tensor | None) -> Tensor:
        assert self.discount_head is not None
        return self.discount_head(self._with_cond(feat, cond)).squeeze(-1).float()

    def imagined_reward(self, feat: Tensor, action: Tensor, cond: Tensor | None = None) -> Tensor:
        """Default reward of an imagined trajectory ``feat`` [H+1, N, F], ``action`` [H+1, N, A] (action[t]
        chosen at state t-1): r̂(s_t), minus ``ensemble_penalty`` times the ensemble's disagreement about
        reaching s_t from (s_{t-1}, a_t) when the ensemble is on (offline DV2)."""
        reward = self.reward(feat, cond)
        if self.ensemble is None:
            return reward
        penalty = self.ensemble.disagreement(feat[:-1], action[1:])
        return torch.cat([reward[:1], reward[1:] - self.cfg.ensemble_penalty * penalty])

    # -- loss ----------------------------------------------------------------------------------------------
    def kl_loss(self, post: LatentState, prior: LatentState) -> tuple[Tensor, Tensor]:
        """KL balancing (DreamerV2 Section 2 and Algorithm 2):

            balance · max(mean KL(sg(post) ‖ prior), free)
            + (1 − balance) · max(mean KL(post ‖ sg(prior)), free)

        With balance 0.8 the prior is trained four times as fast as the posterior is regularised. Free nats
        are applied to the batch-mean KL of each term (DreamerV2 code, ``free_avg: True``), so the clamp acts
        on the average over batch and time rather than per step. Returns (loss, mean KL value)."""
        free = self.cfg.kl_free
        trains_prior = self.rssm.kl(post.stats.detach(), prior.stats).mean()
        trains_post = self.rssm.kl(post.stats, prior.stats.detach()).mean()
        balance = self.cfg.kl_balance
        loss = balance * trains_prior.clamp_min(free) + (1 - balance) * trains_post.clamp_min(free)
        return loss, trains_post.detach()

    def loss(self, batch: Batch, state: LatentState | None = None
             ) -> tuple[Tensor, dict[str, Tensor], WorldModelOutputs]:
        """World-model loss, DreamerV2 Eq. 2: image (and state) reconstruction, reward and discount
        log-likelihoods, and β times the balanced KL. All heads train the representation (DV2 code
        ``grad_heads``). Returns (total loss, detached metrics, outputs)."""
        cfg = self.cfg
        out = self.observe(batch, state)
        recon = self.decoder(out.feat, out.cond)
        terms = ObsDecoder.loss(recon, batch)
        reward_pred = self.reward(out.feat, out.cond)
        terms["reward"] = 0.5 * (reward_pred - batch["reward"].float()).square().mean()
        scales = {"image": cfg.image_scale, "state": cfg.state_scale, "reward": cfg.reward_scale}
        if self.discount_head is not None:
            logits = self._discount_logits(out.feat, out.cond)
            continues = 1.0 - batch["is_terminal"].float()
            terms["discount"] = F.binary_cross_entropy_with_logits(logits, continues)
            scales["discount"] = cfg.discount_scale
        kl_loss, kl_value = self.kl_loss(out.post, out.prior)
        total = cfg.kl_scale * kl_loss + sum(scales[name] * value for name, value in terms.items())
        if self.ensemble is not None:
            terms["ensemble"] = self.ensemble.loss(out.feat, batch["action"].float(), out.post.stoch,
                                                   batch["is_first"])
            total = total + terms["ensemble"]
        metrics = {f"wm/{name}_loss": value.detach() for name, value in terms.items()}
        metrics.update({"wm/kl": kl_value, "wm/kl_loss": kl_loss.detach(), "wm/loss": total.detach()})
        return total, metrics, out
