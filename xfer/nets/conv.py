"""DreamerV2's convolutional image encoder and transposed-convolution decoder (Hafner et al. 2021, Appendix
"Hyper parameters": CNN depth 48, encoder kernels 4-4-4-4 stride 2, decoder kernels 5-5-6-6 stride 2, ELU).

Both work on float tensors in NCHW layout; converting uint8 observations to [-0.5, 0.5] is the job of the
observation encoder in :mod:`xfer.dreamer.observation`. Only 64×64 images are supported: the decoder's
kernels 5-5-6-6 produce exactly 64×64 from a 1×1 map, as in the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

IMAGE_SIZE = 64


def _conv_out(size: int, kernel: int, stride: int = 2) -> int:
    return (size - kernel) // stride + 1


class ConvEncoder(nn.Module):
    """Conv layers with ``depth·2^i`` channels, valid padding, stride 2, ELU; output flattened.

    For 64×64 inputs and kernels 4-4-4-4 the spatial size goes 31, 14, 6, 2, so the embedding has
    ``depth·8·2·2`` features (1536 at depth 48).
    """

    def __init__(self, in_channels: int, depth: int, kernels: Sequence[int], size: int = IMAGE_SIZE) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for index, kernel in enumerate(kernels):
            out = depth * 2**index
            layers += [nn.Conv2d(channels, out, kernel, stride=2), nn.ELU()]
            channels = out
            size = _conv_out(size, kernel)
        if size < 1:
            raise ValueError(f"image too small for encoder kernels {list(kernels)}")
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.out_dim = channels * size * size

    def forward(self, image: Tensor) -> Tensor:
        """``image`` float [N, C, H, W] → embedding [N, out_dim]."""
        return self.net(image)


class ConvDecoder(nn.Module):
    """Linear to ``32·depth`` channels at 1×1, then transposed convs halving channels (ELU between) and a last
    layer to ``out_channels``. Kernels 5-5-6-6 take 1×1 to 5, 13, 30, 64 pixels. Returns the mean image of a
    unit-variance Gaussian (the paper's image log-likelihood)."""

    def __init__(self, in_dim: int, depth: int, kernels: Sequence[int], out_channels: int = 3) -> None:
        super().__init__()
        self.stem_channels = 32 * depth
        self.linear = nn.Linear(in_dim, self.stem_channels)
        layers: list[nn.Module] = []
        channels = self.stem_channels
        size = 1
        for index, kernel in enumerate(kernels):
            last = index == len(kernels) - 1
            out = out_channels if last else depth * 2 ** (len(kernels) - index - 2)
            layers.append(nn.ConvTranspose2d(channels, out, kernel, stride=2))
            if not last:
                layers.append(nn.ELU())
            channels = out
            size = (size - 1) * 2 + kernel
        self.net = nn.Sequential(*layers)
        self.out_size = size

    def forward(self, feat: Tensor) -> Tensor:
        """``feat`` [N, in_dim] → image mean [N, out_channels, out_size, out_size].

        The first transposed conv sees a 1×1 map, where it is exactly a matrix product with its weight
        [C_in, C_out·k·k]; computing it as one is several times faster on CPU than the conv kernel."""
        stem = self.linear(feat)
        first: nn.ConvTranspose2d = self.net[0]
        kernel = first.kernel_size[0]
        if first.weight.is_contiguous(memory_format=torch.channels_last):  # keep NHWC without copies
            weight = first.weight.permute(0, 2, 3, 1).flatten(1)
            x = (stem @ weight).unflatten(-1, (kernel, kernel, first.out_channels)).permute(0, 3, 1, 2)
        else:
            x = (stem @ first.weight.flatten(1)).unflatten(-1, (first.out_channels, kernel, kernel))
        return self.net[1:](x + first.bias[:, None, None])
