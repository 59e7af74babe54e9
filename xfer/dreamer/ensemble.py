"""An ensemble of one-step latent predictors for the offline-DV2 disagreement penalty.

CoWorld's "Offline DV2" baseline (Wang et al., Section 5) is DreamerV2 with a reward penalty given by the
disagreement of an ensemble (as in MOPO/LOMPO and Plan2Explore's ensemble): each member maps
(feat_t, a_{t+1}) to the next posterior sample z_{t+1}; in imagination the reward of state t+1 is lowered by
``penalty · std_k(prediction_k)`` averaged over latent dims. Inputs and targets are detached, so the ensemble
learns alongside the world model (same optimiser) without shaping its representation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from xfer.nets.mlp import MLP


class LatentEnsemble(nn.Module):
    def __init__(self, feat_dim: int, act_dim: int, stoch_dim: int, size: int, units: int, layers: int
                 ) -> None:
        super().__init__()
        self.members = nn.ModuleList(MLP(feat_dim + act_dim, stoch_dim, units, layers) for _ in range(size))

    def forward(self, feat: Tensor, next_action: Tensor) -> Tensor:
        """Predictions [members, ..., stoch_dim]."""
        inputs = torch.cat([feat, next_action], -1)
        return torch.stack([member(inputs) for member in self.members]).float()

    def loss(self, feat: Tensor, action: Tensor, stoch: Tensor, is_first: Tensor) -> Tensor:
        """MSE of predicting z_{t+1} from (feat_t, a_{t+1}) on [B, L] sequences, skipping episode starts."""
        pred = self(feat[:, :-1].detach(), action[:, 1:])
        error = (pred - stoch[:, 1:].detach()).square().mean(-1)
        valid = 1.0 - is_first[:, 1:].float()
        return (error * valid).sum() / (valid.sum() * len(self.members)).clamp_min(1.0)

    def disagreement(self, feat: Tensor, next_action: Tensor) -> Tensor:
        """Std over members, averaged over latent dims: [...]."""
        return self(feat, next_action).std(0).mean(-1)
