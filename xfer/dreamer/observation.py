"""Observation encoder and decoder of the DreamerV2 world model for dict observations.

Keys: ``image`` (uint8 [..., 64, 64, C]) through the conv encoder/decoder, ``state`` (float [..., D]) through
MLPs (DreamerV2 code: ``mlp_keys``), or both; the embedding is the concatenation.

Images are converted to float in [-0.5, 0.5] *here*, inside the model (DreamerV2 code ``preprocess``), so
every caller hands over raw uint8 frames. A uint8 check turns a silently wrong dtype (the trap a PyTorch port
fell into) into an error.

Conditioning (``cond_dim`` > 0, Vid2Act's task label): the vector is broadcast as ``cond_dim`` constant image
channels placed in front of the RGB channels at the encoder input, appended to the state-encoder input, and
concatenated to the features at the decoder input.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from xfer.dreamer.config import DreamerConfig
from xfer.nets.conv import IMAGE_SIZE, ConvDecoder, ConvEncoder
from xfer.nets.mlp import MLP


def image_to_float(image: Tensor) -> Tensor:
    """uint8 [..., H, W, C] → float [..., H, W, C] in [-0.5, 0.5]."""
    if image.dtype != torch.uint8:
        raise TypeError(f"images must arrive as uint8, got {image.dtype} (the model normalises them)")
    return image.float() / 255.0 - 0.5


def image_nll(recon: Tensor, image: Tensor) -> Tensor:
    """The image term of DreamerV2 Eq. 2: −log N(x; x̂, 1) up to its constant, ½·Σ_{C,H,W} (x̂ − x)², averaged
    over the leading axes. ``recon`` [..., C, H, W] float, ``image`` the uint8 frames [..., H, W, C]."""
    target = image_to_float(image).movedim(-1, -3)
    return 0.5 * (recon - target).square().sum((-3, -2, -1)).mean()


def float_to_image(image: Tensor) -> Tensor:
    """float in [-0.5, 0.5] → uint8, clipped."""
    return ((image + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)


def check_obs_shapes(obs_shapes: Mapping[str, tuple[int, ...]]) -> None:
    unknown = set(obs_shapes) - {"image", "state"}
    if unknown or not obs_shapes:
        raise ValueError(f"observation keys must be 'image' and/or 'state', got {sorted(obs_shapes)}")
    if "image" in obs_shapes and tuple(obs_shapes["image"][:2]) != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"DreamerV2's conv codec needs {IMAGE_SIZE}×{IMAGE_SIZE} images, "
                         f"got {tuple(obs_shapes['image'])}")


class ObsEncoder(nn.Module):
    """dict of observations [..., *shape] (+ optional cond [..., K]) → embedding [..., embed_dim]."""

    def __init__(self, obs_shapes: Mapping[str, tuple[int, ...]], cfg: DreamerConfig, cond_dim: int = 0
                 ) -> None:
        super().__init__()
        check_obs_shapes(obs_shapes)
        self.cond_dim = cond_dim
        self.channels_last = cfg.channels_last
        self.embed_dim = 0
        self.conv: ConvEncoder | None = None
        self.mlp: MLP | None = None
        if "image" in obs_shapes:
            self.conv = ConvEncoder(obs_shapes["image"][-1] + cond_dim, cfg.cnn_depth, cfg.encoder_kernels)
            self.embed_dim += self.conv.out_dim
            if cfg.channels_last:
                self.conv.to(memory_format=torch.channels_last)
        if "state" in obs_shapes:
            self.mlp = MLP(obs_shapes["state"][0] + cond_dim, None, cfg.mlp_units, cfg.mlp_layers)
            self.embed_dim += self.mlp.out_dim

    def forward(self, obs: Mapping[str, Tensor], cond: Tensor | None = None) -> Tensor:
        parts = []
        if self.conv is not None:
            image = obs["image"]
            lead = image.shape[:-3]
            pixels = image_to_float(image).flatten(0, len(lead) - 1).permute(0, 3, 1, 2)
            if cond is not None:
                planes = cond.flatten(0, len(lead) - 1)[:, :, None, None].expand(-1, -1, *pixels.shape[2:])
                pixels = torch.cat([planes, pixels], 1)
            fmt = torch.channels_last if self.channels_last else torch.contiguous_format
            parts.append(self.conv(pixels.contiguous(memory_format=fmt)).unflatten(0, lead))
        if self.mlp is not None:
            state = obs["state"].float()
            parts.append(self.mlp(state if cond is None else torch.cat([state, cond], -1)))
        return torch.cat(parts, -1) if len(parts) > 1 else parts[0]


class ObsDecoder(nn.Module):
    """features [..., F] (+ cond) → reconstruction means per key: ``image`` float [..., C, H, W] in the
    model's [-0.5, 0.5] scale (channels first), ``state`` [..., D]. Unit-variance Gaussians: :meth:`loss` is
    Σ ½‖x − μ‖² per key (Eq. 2's reconstruction term up to constants)."""

    def __init__(self, obs_shapes: Mapping[str, tuple[int, ...]], feat_dim: int, cfg: DreamerConfig,
                 cond_dim: int = 0) -> None:
        super().__init__()
        in_dim = feat_dim + cond_dim
        self.conv: ConvDecoder | None = None
        self.mlp: MLP | None = None
        if "image" in obs_shapes:
            self.conv = ConvDecoder(in_dim, cfg.cnn_depth, cfg.decoder_kernels, obs_shapes["image"][-1])
            if cfg.channels_last:
                self.conv.to(memory_format=torch.channels_last)
        if "state" in obs_shapes:
            self.mlp = MLP(in_dim, obs_shapes["state"][0], cfg.mlp_units, cfg.mlp_layers)

    def forward(self, feat: Tensor, cond: Tensor | None = None) -> dict[str, Tensor]:
        inputs = feat if cond is None else torch.cat([feat, cond.expand(*feat.shape[:-1], -1)], -1)
        out: dict[str, Tensor] = {}
        if self.conv is not None:
            lead = inputs.shape[:-1]
            flat = inputs.flatten(0, len(lead) - 1)
            out["image"] = self.conv(flat).unflatten(0, lead).float()
        if self.mlp is not None:
            out["state"] = self.mlp(inputs).float()
        return out

    @staticmethod
    def loss(recon: Mapping[str, Tensor], obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Negative log-likelihood per key (mean over batch/time, sum over the observation's dims)."""
        losses = {}
        if "image" in recon:
            losses["image"] = image_nll(recon["image"], obs["image"])
        if "state" in recon:
            losses["state"] = 0.5 * (recon["state"] - obs["state"].float()).square().sum(-1).mean()
        return losses
