"""Radial basis and smooth cutoff envelope of edge lengths."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class BesselBasis(nn.Module):
    r"""Spherical Bessel (sine) radial basis, e_n(r) = sqrt(2/r_c) sin(nπ r / r_c) / r.

    Parameters
    ----------
    cutoff
        Cutoff radius r_c in Å.
    num_radial
        Number of basis functions n = 1 … num_radial.
    trainable
        Whether the frequencies nπ/r_c are learned.

    References
    ----------
    Klicpera, Groß, Günnemann, "Directional message passing for molecular graphs", ICLR 2020.
    """

    def __init__(self, cutoff: float, num_radial: int = 8, trainable: bool = False) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        frequencies = torch.arange(1, num_radial + 1) * (math.pi / cutoff)
        self.frequencies = nn.Parameter(frequencies, requires_grad=trainable)
        self.prefactor = math.sqrt(2.0 / cutoff)

    def forward(self, lengths: Tensor) -> Tensor:
        """Evaluate the basis on ``lengths [E]`` (Å, > 0), returning ``[E, num_radial]``."""
        r = lengths.unsqueeze(-1)
        return self.prefactor * torch.sin(self.frequencies * r) / r


class PolynomialEnvelope(nn.Module):
    r"""Smooth cutoff f(x) = 1 − (p+1)(p+2)/2 x^p + p(p+2) x^{p+1} − p(p+1)/2 x^{p+2}, x = r/r_c.

    f(0) = 1, and f, f' and f'' vanish at r = r_c, so energies and forces are continuous as a
    neighbor crosses the cutoff; f = 0 beyond it.

    Parameters
    ----------
    cutoff
        Cutoff radius r_c in Å.
    p
        Polynomial order (6 as in DimeNet and NequIP).
    """

    def __init__(self, cutoff: float, p: int = 6) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.p = int(p)

    def forward(self, lengths: Tensor) -> Tensor:
        """Evaluate on ``lengths [E]`` (Å), returning ``[E]`` in [0, 1]."""
        p = self.p
        x = lengths / self.cutoff
        value = (
            1.0
            - (p + 1) * (p + 2) / 2 * x**p
            + p * (p + 2) * x ** (p + 1)
            - p * (p + 1) / 2 * x ** (p + 2)
        )
        return torch.where(x < 1.0, value, torch.zeros_like(value))
