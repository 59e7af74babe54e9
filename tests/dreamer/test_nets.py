"""Shapes of the conv codec and the decoder's matmul shortcut for its first transposed conv."""

from __future__ import annotations

import pytest
import torch

from xfer.nets.conv import ConvDecoder, ConvEncoder


def test_encoder_output_size_matches_paper_shapes() -> None:
    encoder = ConvEncoder(3, 48, (4, 4, 4, 4))
    assert encoder.out_dim == 48 * 8 * 2 * 2
    assert encoder(torch.zeros(2, 3, 64, 64)).shape == (2, 1536)


@pytest.mark.parametrize("channels_last", [False, True])
def test_decoder_first_layer_shortcut_equals_the_transposed_conv(channels_last: bool) -> None:
    decoder = ConvDecoder(20, 4, (5, 5, 6, 6))
    feat = torch.randn(3, 20)
    reference = decoder.net(decoder.linear(feat).reshape(-1, decoder.stem_channels, 1, 1))
    if channels_last:
        decoder.to(memory_format=torch.channels_last)
    out = decoder(feat)
    assert out.shape == (3, 3, 64, 64)
    assert torch.allclose(out, reference, atol=1e-5)
