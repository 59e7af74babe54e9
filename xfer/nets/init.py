"""Weight initialisation schemes for the backbones' layers."""

from __future__ import annotations

from torch import nn

LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def glorot_init_(module: nn.Module) -> nn.Module:
    """Xavier/Glorot-uniform weights and zero biases for every linear and (transposed) convolution layer in
    ``module``, in place: Keras' defaults, hence DreamerV2 code's initialisation (its layers are Keras
    ``Dense`` / ``Conv2D`` / ``Conv2DTranspose`` with default initialisers), and sheeprl's. Norm layers keep
    (1, 0)."""
    for layer in module.modules():
        if isinstance(layer, LAYERS):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module
