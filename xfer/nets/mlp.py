"""Multi-layer perceptrons with ELU activations, DreamerV2's default head architecture (Hafner et al. 2021,
Appendix: "MLP 4 × 400, ELU")."""

from __future__ import annotations

from torch import Tensor, nn


class MLP(nn.Module):
    """``layers`` hidden Linear+ELU layers of ``units`` each, then a linear output of ``out_dim``.

    ``out_dim=None`` drops the output layer (the MLP ends on its last hidden activation, used by the state
    encoder). ``layers=0`` with an output is a single linear map.
    """

    def __init__(self, in_dim: int, out_dim: int | None, units: int, layers: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = in_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, units), nn.ELU()]
            width = units
        if out_dim is not None:
            blocks.append(nn.Linear(width, out_dim))
            width = out_dim
        self.net = nn.Sequential(*blocks)
        self.out_dim = width

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
