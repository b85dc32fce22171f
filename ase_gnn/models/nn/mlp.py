"""Small dense networks and the shifted-softplus activation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


class ShiftedSoftplus(nn.Module):
    """ssp(x) = softplus(x) − log 2, a smooth activation with ssp(0) = 0 (SchNet)."""

    def forward(self, x: Tensor) -> Tensor:
        """Apply element-wise."""
        # Shifting in place saves one pass and one temporary over every [E, F] filter activation.
        # It is safe under autograd: softplus saves its input for the backward, not its output.
        return nn.functional.softplus(x).sub_(math.log(2.0))


class MLP(nn.Sequential):
    """Dense layers ``sizes[0] → … → sizes[-1]`` with shifted softplus between them.

    Parameters
    ----------
    sizes
        Layer widths, input first; at least two.
    bias_last
        Whether the last layer has a bias.
    """

    def __init__(self, sizes: Sequence[int], bias_last: bool = True) -> None:
        if len(sizes) < 2:
            raise ValueError(f"an MLP needs at least an input and an output size, got {sizes}")
        layers: list[nn.Module] = []
        for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = k == len(sizes) - 2
            layers.append(nn.Linear(n_in, n_out, bias=bias_last or not last))
            if not last:
                layers.append(ShiftedSoftplus())
        super().__init__(*layers)


def xavier_init_(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every ``nn.Linear`` in ``module`` (in place)."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            nn.init.xavier_uniform_(sub.weight)
            if sub.bias is not None:
                torch.nn.init.zeros_(sub.bias)
