"""Building blocks shared by methods: MLPs, DreamerV2's conv encoder/decoder, distributions and the RSSM."""

from xfer.nets.conv import ConvDecoder, ConvEncoder
from xfer.nets.dists import OneHotCategorical, TruncatedNormal, straight_through_onehot
from xfer.nets.mlp import MLP
from xfer.nets.rssm import RSSM, LatentState, LayerNormGRUCell

__all__ = [
    "MLP", "RSSM", "ConvDecoder", "ConvEncoder", "LatentState", "LayerNormGRUCell", "OneHotCategorical",
    "TruncatedNormal", "straight_through_onehot",
]
