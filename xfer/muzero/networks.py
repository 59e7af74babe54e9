"""EfficientZero networks for Atari (XTRA Appendix H; Ye et al. 2021, Appendix A).

Representation h: 96x96 stacked frames -> 64x6x6 latent through a downsampling stack with residual blocks
(1 trailing block; 4 in EfficientZero-L). Dynamics g: latent + one constant action plane (a / |A|, EZ code)
or one plane per action (``action_encoding: one_hot``, LightZero's default) -> next latent, and the value
prefix from an LSTM over the flattened reward features. Prediction f: latent -> policy logits and
categorical value. Projector + prediction head for the SimSiam consistency loss (Ye et al. 2021,
Sec. 4.1); all widths from :class:`~xfer.muzero.config.EfficientZeroConfig`.

Speed switches (``amp``, ``compile``, as the Dreamer backbone's): every inference of self-play, search,
reanalyse and evaluation goes through :meth:`EfficientZeroNet.initial_inference` /
:meth:`~EfficientZeroNet.recurrent_inference`, which run the networks under bf16 autocast on CUDA
(not on the CPU, see :func:`autocast`; reanalyse's large batches excepted) when ``amp`` is set and hand
back float32 (latents, LSTM states, logits; scalars are decoded in float32), so the NumPy search is the
same either way. ``compile`` compiles h, g and f in place (``Module.compile``): parameter names and
state-dict keys stay as they are, so a run resumes with the switch flipped.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.support import support_to_scalar
from xfer.nets.precision import bf16_autocast

LstmState = tuple[torch.Tensor, torch.Tensor]
COMPILED = ("representation", "dynamics_net", "prediction")  # what ``compile: true`` compiles


def autocast(amp: bool, device: torch.device, cpu: bool = False) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast when ``amp`` and ``device`` is CUDA (or the CPU, with ``cpu``); nothing otherwise.
    Inference keeps the CPU in float32: at self-play's batches of a few roots the casts cost more than bf16
    saves (measured: a 4-root search 40 ms against 30 ms), while the learner's batches gain 1.5-1.7x, and
    so do reanalyse's hundreds of observations (``initial_inference(large_batch=True)``)."""
    return bf16_autocast(amp and (cpu or device.type == "cuda"), device)


@dataclass
class Inference:
    """What search needs from one network call; scalars are decoded from the categorical support."""

    latent: torch.Tensor  # [B, C, H, W]
    reward_hidden: LstmState  # two [1, B, lstm_hidden]
    value_prefix: torch.Tensor  # [B]
    value: torch.Tensor  # [B]
    policy_logits: torch.Tensor  # [B, A]


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def set_stat_momentum(module: nn.Module, momentum: float) -> None:
    """Momentum of every batch norm's running statistics in ``module``; 0 leaves them as they are."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum


def set_bn_train(module: nn.Module, train: bool) -> None:
    """Batch norms in ``module`` normalise with batch statistics (``train``) or their running ones."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train(train)


def norm2d(cfg: EfficientZeroConfig, channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=cfg.bn_momentum)


def norm1d(cfg: EfficientZeroConfig, features: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(features, momentum=cfg.bn_momentum)


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus a (possibly strided, projected) skip, then ReLU."""

    def __init__(self, cin: int, cout: int, cfg: EfficientZeroConfig, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride)
        self.bn1 = norm2d(cfg, cout)
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = norm2d(cfg, cout)
        self.skip = _conv3x3(cin, cout, stride) if (stride != 1 or cin != cout) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.skip(x))


def mlp_head(cfg: EfficientZeroConfig, n_in: int, n_out: int) -> nn.Sequential:
    """Linear-BN-ReLU-Linear; the last layer zero-initialised as in EZ code (``init_zero``)."""
    head = nn.Sequential(nn.Linear(n_in, cfg.head_hidden), norm1d(cfg, cfg.head_hidden), nn.ReLU(),
                         nn.Linear(cfg.head_hidden, n_out))
    if cfg.init_zero:
        nn.init.zeros_(head[-1].weight)
        nn.init.zeros_(head[-1].bias)
    return head


def action_planes(cfg: EfficientZeroConfig) -> int:
    return cfg.n_actions if cfg.action_encoding == "one_hot" else 1


def encode_action(action: torch.Tensor, cfg: EfficientZeroConfig, spatial: tuple[int, ...]) -> torch.Tensor:
    """``[B]`` actions to ``[B, planes, *spatial]``: one constant plane a / |A| (EZ code), or one plane per
    action with a one at the taken action (``one_hot``, LightZero's default), which lets g tell actions
    apart without first learning to cut a scalar into intervals."""
    if cfg.action_encoding == "one_hot":
        code = F.one_hot(action.long(), cfg.n_actions).float()
    else:
        code = (action.float() / cfg.n_actions)[:, None]
    return code.view(*code.shape, *([1] * len(spatial))).expand(*code.shape, *spatial)


class RepresentationNetwork(nn.Module):
    """Appendix H: conv s2 (C/2), res, res-down s2 (C), res, pool s2, res, pool s2, ``repr_blocks`` res."""

    def __init__(self, cfg: EfficientZeroConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.stem = nn.Sequential(nn.Conv2d(cfg.obs_channels, c // 2, 3, stride=2, padding=1, bias=False),
                                  norm2d(cfg, c // 2), nn.ReLU())
        self.body = nn.Sequential(
            ResidualBlock(c // 2, c // 2, cfg),
            ResidualBlock(c // 2, c, cfg, stride=2),
            ResidualBlock(c, c, cfg),
            nn.AvgPool2d(3, stride=2, padding=1),
            ResidualBlock(c, c, cfg),
            nn.AvgPool2d(3, stride=2, padding=1),
            *[ResidualBlock(c, c, cfg) for _ in range(cfg.repr_blocks)],
        )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(self.stem(obs))


class DynamicsNetwork(nn.Module):
    """Appendix H: (latent ++ action plane) -> conv -> BN -> + latent -> ReLU -> blocks; LSTM value prefix."""

    def __init__(self, cfg: EfficientZeroConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.conv = _conv3x3(c + action_planes(cfg), c)
        self.bn = norm2d(cfg, c)
        self.blocks = nn.Sequential(*[ResidualBlock(c, c, cfg) for _ in range(cfg.dyn_blocks)])
        self.reward_conv = nn.Sequential(nn.Conv2d(c, cfg.reduced_channels, 1),
                                         norm2d(cfg, cfg.reduced_channels), nn.ReLU())
        self.lstm = nn.LSTM(cfg.reduced_channels * cfg.latent_size**2, cfg.lstm_hidden)
        self.lstm_bn = norm1d(cfg, cfg.lstm_hidden)
        self.head = mlp_head(cfg, cfg.lstm_hidden, cfg.support_bins)

    def forward(self, latent: torch.Tensor, action_plane: torch.Tensor,
                hidden: LstmState) -> tuple[torch.Tensor, LstmState, torch.Tensor]:
        x = self.bn(self.conv(torch.cat([latent, action_plane], dim=1)))
        nxt = self.blocks(F.relu(x + latent))
        features = self.reward_conv(nxt).flatten(1).unsqueeze(0)
        out, hidden = self.lstm(features, hidden)
        prefix_logits = self.head(F.relu(self.lstm_bn(out.squeeze(0))))
        return nxt, hidden, prefix_logits


class PredictionNetwork(nn.Module):
    """Appendix H: residual block, then 1x1-conv heads to policy logits and value-support logits."""

    def __init__(self, cfg: EfficientZeroConfig) -> None:
        super().__init__()
        c, r = cfg.channels, cfg.reduced_channels
        flat = r * cfg.latent_size**2
        self.blocks = nn.Sequential(*[ResidualBlock(c, c, cfg) for _ in range(cfg.pred_blocks)])
        self.value_conv = nn.Sequential(nn.Conv2d(c, r, 1), norm2d(cfg, r), nn.ReLU())
        self.policy_conv = nn.Sequential(nn.Conv2d(c, r, 1), norm2d(cfg, r), nn.ReLU())
        self.value_head = mlp_head(cfg, flat, cfg.support_bins)
        self.policy_head = mlp_head(cfg, flat, cfg.n_actions)

    def forward(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.blocks(latent)
        policy = self.policy_head(self.policy_conv(x).flatten(1))
        return policy, self.value_head(self.value_conv(x).flatten(1))


class EfficientZeroNet(nn.Module):
    """h, g, f and the SimSiam projector of EfficientZero; ``initial/recurrent_inference`` serve MCTS."""

    def __init__(self, cfg: EfficientZeroConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.network == "mlp":
            from xfer.muzero.mlp_networks import MlpDynamics, MlpPrediction, MlpRepresentation

            self.representation: nn.Module = MlpRepresentation(cfg)
            self.dynamics_net: nn.Module = MlpDynamics(cfg)
            self.prediction: nn.Module = MlpPrediction(cfg)
            flat = cfg.latent_dim
        else:
            self.representation = RepresentationNetwork(cfg)
            self.dynamics_net = DynamicsNetwork(cfg)
            self.prediction = PredictionNetwork(cfg)
            flat = cfg.channels * cfg.latent_size**2
        self.projector = nn.Sequential(
            nn.Linear(flat, cfg.proj_hidden), nn.BatchNorm1d(cfg.proj_hidden), nn.ReLU(),
            nn.Linear(cfg.proj_hidden, cfg.proj_hidden), nn.BatchNorm1d(cfg.proj_hidden), nn.ReLU(),
            nn.Linear(cfg.proj_hidden, cfg.proj_out), nn.BatchNorm1d(cfg.proj_out))
        self.projection_head = nn.Sequential(
            nn.Linear(cfg.proj_out, cfg.pred_hidden), nn.BatchNorm1d(cfg.pred_hidden), nn.ReLU(),
            nn.Linear(cfg.pred_hidden, cfg.proj_out))
        if cfg.compile:
            self.compile_modules()

    def compile_modules(self) -> None:
        """torch.compile h, g and f in place (``Module.compile``, as the Dreamer agent): the modules and
        their parameters keep their names, so state dicts and checkpoints are those of the plain network."""
        for name in COMPILED:
            getattr(self, name).compile()

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Copies (``copy.deepcopy``, pickling to worker processes) are compiled as the original: torch
        drops a module's compiled call when it is copied (``Module.__getstate__``)."""
        super().__setstate__(state)
        if self.cfg.compile:
            self.compile_modules()

    def represent(self, obs: torch.Tensor) -> torch.Tensor:
        """Stacked frames (uint8 in [0, 255] or float in [0, 1]) or stacked state vectors -> latent."""
        if obs.dtype == torch.uint8:
            obs = obs.float() / 255.0
        return self.representation(obs)

    def dynamics(self, latent: torch.Tensor, hidden: LstmState,
                 action: torch.Tensor) -> tuple[torch.Tensor, LstmState, torch.Tensor]:
        """One model step; the action enters as :func:`encode_action` planes."""
        return self.dynamics_net(latent, encode_action(action, self.cfg, latent.shape[2:]), hidden)

    def project(self, latent: torch.Tensor, with_head: bool) -> torch.Tensor:
        """SimSiam: projector, plus the prediction head on the online branch only."""
        proj = self.projector(latent.flatten(1))
        return self.projection_head(proj) if with_head else proj

    def initial_hidden(self, batch: int) -> LstmState:
        zeros = torch.zeros(1, batch, self.cfg.lstm_hidden, device=next(self.parameters()).device)
        return zeros, zeros.clone()

    @torch.no_grad()
    def initial_inference(self, obs: torch.Tensor, large_batch: bool = False) -> Inference:
        """h and f of a batch of stacked observations; float32 out whatever ``amp`` (see the module doc).

        ``large_batch`` (reanalyse's hundreds of observations per update): with ``amp``, on the CPU and the
        conv networks, the representation's convolutions run under bf16 autocast too, where at such batches
        they take about half the float32 time, and the heads run in float32 on its float32 latent, so the
        values are decoded from float32 logits. CUDA and the mlp networks infer as without it."""
        if large_batch and obs.device.type == "cpu" and self.cfg.network != "mlp":
            with autocast(self.cfg.amp, obs.device, cpu=True):
                latent = self.represent(obs)
            logits, value_logits = self.prediction(latent.float())
        else:
            with autocast(self.cfg.amp, obs.device):
                latent = self.represent(obs)
                logits, value_logits = self.prediction(latent)
        batch = latent.shape[0]
        return Inference(latent.float(), self.initial_hidden(batch), torch.zeros(batch, device=latent.device),
                         support_to_scalar(value_logits), logits.float())

    @torch.no_grad()
    def recurrent_inference(self, latent: torch.Tensor, hidden: LstmState, action: torch.Tensor) -> Inference:
        """g and f of one model step; float32 out whatever ``amp`` (see the module doc)."""
        with autocast(self.cfg.amp, latent.device):
            nxt, hidden, prefix_logits = self.dynamics(latent, hidden, action)
            logits, value_logits = self.prediction(nxt)
        prefix, value = support_to_scalar(prefix_logits), support_to_scalar(value_logits)
        return Inference(nxt.float(), (hidden[0].float(), hidden[1].float()), prefix, value, logits.float())
