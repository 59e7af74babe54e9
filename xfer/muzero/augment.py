"""Image augmentations of EfficientZero's consistency views: random shift, then random intensity.

EZ code (``core/dataset.py``, ``--augmentation shift intensity``, both on by default) applies them in this
order to the stacked observations scaled to [0, 1], one draw per sample shared by all its frames:
- shift: replicate-pad by 4 pixels and crop back at a random offset;
- intensity: multiply by 1 + 0.05 * clamp(z, -2, 2) with z ~ N(0, 1) (from SPR), so brightness moves by at
  most ±10 %; the result is not clipped to [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Per-sample random translation by up to ``pad`` pixels with replicate padding (EZ's 'shift')."""
    if pad == 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    oy = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device) + torch.arange(h, device=x.device)
    ox = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device) + torch.arange(w, device=x.device)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, oy[:, None, :, None], ox[:, None, None, :]]


def random_intensity(x: torch.Tensor, scale: float) -> torch.Tensor:
    """x * (1 + scale * clamp(z, -2, 2)), one z ~ N(0, 1) per sample (EZ's 'intensity', scale 0.05)."""
    if scale == 0:
        return x
    z = torch.randn((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device)
    return x * (1.0 + scale * z.clamp(-2.0, 2.0))


def augment(x: torch.Tensor, shift: int, intensity: float) -> torch.Tensor:
    """EZ's default pipeline: shift, then intensity."""
    return random_intensity(random_shift(x, shift), intensity)
