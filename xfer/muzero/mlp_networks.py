"""EfficientZero's h, g, f for state vectors (classic control), the MLP counterparts of ``networks.py``.

EfficientZero and LightZero ship such a variant for CartPole-like tasks; xfer's keeps the structure of the
conv networks with linear layers in place of convolutions (widths from :class:`EfficientZeroConfig`):
- h: stacked state vectors -> Linear-BN-ReLU -> Linear-BN-ReLU -> latent (``latent_dim``);
- g: (latent ++ action code) -> Linear-BN, plus the latent, ReLU, then a residual Linear-BN block; the value
  prefix from an LSTM over the next latent, BN, ReLU, and an MLP head;
- f: a residual Linear-BN block, then MLP heads to policy logits and value-support logits.
Every head's last layer is zero-initialised (``init_zero``), as in the conv networks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.networks import LstmState, action_planes, mlp_head, norm1d


class LinearBlock(nn.Module):
    """Linear-BN-ReLU-Linear-BN plus the input, then ReLU (the residual block with linear layers)."""

    def __init__(self, cfg: EfficientZeroConfig, width: int) -> None:
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(width, width, bias=False), norm1d(cfg, width)
        self.fc2, self.bn2 = nn.Linear(width, width, bias=False), norm1d(cfg, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.fc1(x)))
        return F.relu(self.bn2(self.fc2(out)) + x)


class MlpRepresentation(nn.Module):
    def __init__(self, cfg: EfficientZeroConfig) -> None:
        super().__init__()
        d = cfg.latent_dim
        self.body = nn.Sequential(nn.Linear(cfg.obs_channels, cfg.mlp_hidden), norm1d(cfg, cfg.mlp_hidden),
                                  nn.ReLU(), nn.Linear(cfg.mlp_hidden, d), norm1d(cfg, d), nn.ReLU())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(obs)


class MlpDynamics(nn.Module):
    def __init__(self, cfg: EfficientZeroConfig) -> None:
        super().__init__()
        d = cfg.latent_dim
        self.fc = nn.Linear(d + action_planes(cfg), d, bias=False)
        self.bn = norm1d(cfg, d)
        self.blocks = nn.Sequential(*[LinearBlock(cfg, d) for _ in range(cfg.dyn_blocks)])
        self.lstm = nn.LSTM(d, cfg.lstm_hidden)
        self.lstm_bn = norm1d(cfg, cfg.lstm_hidden)
        self.head = mlp_head(cfg, cfg.lstm_hidden, cfg.support_bins)

    def forward(self, latent: torch.Tensor, action_code: torch.Tensor,
                hidden: LstmState) -> tuple[torch.Tensor, LstmState, torch.Tensor]:
        x = self.bn(self.fc(torch.cat([latent, action_code], dim=1)))
        nxt = self.blocks(F.relu(x + latent))
        out, hidden = self.lstm(nxt.unsqueeze(0), hidden)
        return nxt, hidden, self.head(F.relu(self.lstm_bn(out.squeeze(0))))


class MlpPrediction(nn.Module):
    def __init__(self, cfg: EfficientZeroConfig) -> None:
        super().__init__()
        d = cfg.latent_dim
        self.blocks = nn.Sequential(*[LinearBlock(cfg, d) for _ in range(cfg.pred_blocks)])
        self.value_head = mlp_head(cfg, d, cfg.support_bins)
        self.policy_head = mlp_head(cfg, d, cfg.n_actions)

    def forward(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.blocks(latent)
        return self.policy_head(x), self.value_head(x)
