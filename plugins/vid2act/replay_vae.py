"""The action replay model G_θ of Vid2Act (paper Section 4.2, Eq. 3–4): a state-conditioned VAE in the style
of BCQ (Fujimoto et al. 2019), conditioned on the latent state s and the source-task label k.

    μ, σ = E_θ1(s, a, k),    z ~ N(μ, σ),    â = D_θ2(s, z, k)                                   (Eq. 3)
    L_replay = E[(a − â)² + KL(N(μ, σ) ‖ N(0, I))]                                                 (Eq. 4)

Sizes and details follow the authors' code, as recorded in METHODS.md (the paper gives none): encoder
MLP (s, a, k) → 750 → 750 → (μ, log σ) with log σ clamped to [−4, 15]; latent size 8; decoder MLP (s, z, k) →
750 → 50 → action with tanh, so replayed actions lie in [−1, 1]; at replay time z ~ N(0, I) is clipped to
[−0.5, 0.5] (greedy acting uses z = 0, the mean of that draw, so evaluation is deterministic); the loss is
the element-mean squared error plus ``kl_weight`` times the element-mean KL (the paper leaves the reduction
open; the element means are the authors' and BCQ's). ``kl_weight`` is 1 as in Eq. 4 by default; the authors'
code (and BCQ) use 0.5.

The actor's extra input in Stage 2 (Eq. 8) is the decoder's last hidden activation (50-d), detached — the
authors' code feeds that rather than the action itself (METHODS.md, **code**); see :meth:`replay_features`.
Labels travel as one-hot float vectors [..., K]; :func:`one_hot` makes them from indices. Any action size and
any leading batch shape work (the authors' code hard-codes 4-d actions and 50×50 batches; xfer does not).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from xfer_plugins.vid2act.config import ReplayVAEConfig


def one_hot(labels: Tensor, num_labels: int) -> Tensor:
    """Integer labels [...] → float one-hot [..., num_labels]."""
    return F.one_hot(labels.long(), num_labels).float()


def _mlp(in_dim: int, units: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in units:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers)


class ReplayVAE(nn.Module):
    """G_θ = (E_θ1, D_θ2) over latent states of size ``state_dim``, actions of size ``act_dim`` and
    ``num_labels`` source tasks."""

    def __init__(self, state_dim: int, act_dim: int, num_labels: int, cfg: ReplayVAEConfig) -> None:
        super().__init__()
        self.cfg, self.state_dim, self.act_dim, self.num_labels = cfg, state_dim, act_dim, num_labels
        self.encoder = _mlp(state_dim + act_dim + num_labels, cfg.encoder_units)
        self.mean = nn.Linear(cfg.encoder_units[-1], cfg.latent)
        self.log_std = nn.Linear(cfg.encoder_units[-1], cfg.latent)
        self.decoder = _mlp(state_dim + cfg.latent + num_labels, cfg.decoder_units)
        self.action = nn.Linear(cfg.decoder_units[-1], act_dim)

    @property
    def hidden_dim(self) -> int:
        """Size of the decoder's last hidden activation, the actor's extra input in Stage 2."""
        return self.cfg.decoder_units[-1]

    # -- Eq. 3 --------------------------------------------------------------------------------------------
    def encode(self, state: Tensor, action: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
        """E_θ1(s, a, k) → (μ, σ), with log σ clamped to [log_std_min, log_std_max] (authors' code)."""
        hidden = self.encoder(torch.cat([state, action, label], -1))
        log_std = self.log_std(hidden).clamp(self.cfg.log_std_min, self.cfg.log_std_max)
        return self.mean(hidden), log_std.exp()

    def decoder_hidden(self, state: Tensor, z: Tensor, label: Tensor) -> Tensor:
        """D_θ2's last hidden activation for (s, z, k)."""
        return self.decoder(torch.cat([state, z, label], -1))

    def decode(self, state: Tensor, label: Tensor, z: Tensor | None = None) -> Tensor:
        """â = D_θ2(s, z, k) = tanh(…) ∈ [−1, 1]; without ``z`` it is drawn by :meth:`sample_z`."""
        if z is None:
            z = self.sample_z(state.shape[:-1], state.device)
        return torch.tanh(self.action(self.decoder_hidden(state, z, label)))

    def sample_z(self, shape: torch.Size | tuple[int, ...], device: torch.device | str) -> Tensor:
        """z ~ N(0, I) clipped to [−z_clip, z_clip] (BCQ's and the authors' replay-time sampling)."""
        clip = self.cfg.z_clip
        return torch.randn(*shape, self.cfg.latent, device=device).clamp(-clip, clip)

    def forward(self, state: Tensor, action: Tensor, label: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Reconstruction through the posterior: (â, μ, σ) with z = μ + σ·ε (reparameterised)."""
        mean, std = self.encode(state, action, label)
        z = mean + std * torch.randn_like(std)
        return torch.tanh(self.action(self.decoder_hidden(state, z, label))), mean, std

    # -- Eq. 4 --------------------------------------------------------------------------------------------
    def loss(self, state: Tensor, action: Tensor, label: Tensor, mask: Tensor | None = None
             ) -> tuple[Tensor, dict[str, Tensor]]:
        """L_replay of Eq. 4 over rows [..., ·]: mean over rows and action dims of (a − â)², plus
        ``kl_weight`` times the mean over rows and latent dims of KL(N(μ, σ) ‖ N(0, I)) =
        −½(1 + ln σ² − μ² − σ²) (Eq. 4: weight 1; authors' code: 0.5). ``mask`` [...] (1 = use the row)
        drops rows without a valid (s, a) pair."""
        recon, mean, std = self(state, action, label)
        squared = (recon - action).square()
        kl = -0.5 * (1 + torch.log(std.square()) - mean.square() - std.square())
        if mask is None:
            recon_loss, kl_loss = squared.mean(), kl.mean()
        else:
            weight = mask.float().unsqueeze(-1)
            count = weight.sum().clamp_min(1.0)
            recon_loss = (squared * weight).sum() / (count * self.act_dim)
            kl_loss = (kl * weight).sum() / (count * self.cfg.latent)
        loss = recon_loss + self.cfg.kl_weight * kl_loss
        return loss, {"replay/recon_loss": recon_loss.detach(), "replay/kl_loss": kl_loss.detach(),
                      "replay/loss": loss.detach()}

    # -- Stage 2 (Eq. 8) -----------------------------------------------------------------------------------
    @torch.no_grad()
    def replay_features(self, state: Tensor, label: Tensor, sample: bool = True) -> Tensor:
        """The actor's extra input: D_θ2's last hidden activation for (s, z, k), detached (authors' code;
        METHODS.md), with a freshly sampled, clipped z when ``sample``, else z = 0 (greedy acting)."""
        shape = (*state.shape[:-1], self.cfg.latent)
        z = self.sample_z(state.shape[:-1], state.device) if sample else state.new_zeros(shape)
        return self.decoder_hidden(state, z, label).detach()
