"""Long-range electrostatics: learned charges and their Coulomb energy (Ewald, PME, direct sum).

A model with an :class:`Electrostatics` component adds, to every atom's short-range energy,

    e_i = k_e q_i V_i,    V_i = ½ Σ_j q_j φ(r_ij) over all other atoms and periodic images,

so that Σ_i e_i is the electrostatic energy of the charges and forces and stress follow by
autograd like every other energy (:func:`ase_gnn.models.forces.predict`). k_e = 14.3996 eV·Å/e².

**Charges.** q_i comes from a small network on the atom's invariant features; the network's raw
outputs are shifted uniformly within each structure so that they sum exactly to its total charge
Q (``atoms.info["charge"]``, default 0): q_i = q̃_i − (Σ_j q̃_j − Q)/N.

**Gaussian charges.** Each charge is a Gaussian of width σ (``width``, Å), so two charges
interact by φ(r) = erf(r / 2σ) / r: Coulomb's 1/r beyond a few σ, finite at contact, where the
short-range network takes over (σ = 0 gives point charges, φ = 1/r, for checks against other
codes). The self-energy of each Gaussian (a function of q_i alone) is left out, as in the Ewald
sum, so only interactions between charges count.

**Periodic cells** (all three axes periodic) use Ewald or PME summation from torch-pme with the
splitting width s = √2 σ: the Gaussian-charge interaction is then exactly the reciprocal-space
part, no real-space sum is needed, and the k-space cutoff k_c = √(2 ln(1/accuracy)) / s makes the
omitted terms smaller than ``accuracy`` relative to the largest. Point charges (σ = 0) use a
splitting width of 1 Å and add the real-space sum, switched off smoothly over the ångström
beyond r = s √(2 ln(1/accuracy)). A net charge
gets the uniform neutralising background of the Ewald sum. **Slabs** (two periodic axes) are
summed in their cell, which must have vacuum along the normal (about as thick as the slab), with
the Yeh–Berkowitz correction that removes the interaction of the slab's dipole with its images.
**Molecules** (no periodic axis) use the direct sum over all pairs. Wires (one periodic axis) are
refused.

References
----------
Cheng, "Latent Ewald summation for machine learning of long-range interactions", npj Comput.
Mater. 11, 80 (2025). Loche et al., "Fast and flexible long-range models for atomistic machine
learning" (torch-pme), J. Chem. Phys. 162, 142501 (2025).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from ase_gnn.graph.atomic_graph import AtomicGraph, atoms_per_graph, total_charge
from ase_gnn.models.nn.mlp import MLP

#: e²/(4π ε0) in eV·Å: the Coulomb energy of two unit charges 1 Å apart.
COULOMB_CONSTANT = 14.399645478425668

Summation = Literal["auto", "ewald", "pme"]
SUMMATIONS: tuple[str, ...] = ("auto", "ewald", "pme")
#: With ``summation="auto"``, periodic structures with more atoms use PME (its mesh and FFT cost
#: grows as N log N where Ewald's grows as N^1.5 to N²).
PME_FROM_ATOMS = 80
#: Splitting width of the Ewald sum for point charges (σ = 0), Å.
POINT_CHARGE_SMEARING = 1.0
#: Width over which the real-space sum of point charges is switched off, Å.
SWITCH_WIDTH = 1.0


class Electrostatics(nn.Module):
    """The charge network and the Coulomb settings of a long-range model (module docstring).

    :meth:`~ase_gnn.models.base.EnergyModel.energies_and_charges` applies ``charge_network`` to
    the atom features, makes the charges relative to an isolated atom's and neutral
    (:func:`neutralise`), and adds their :meth:`energies`.

    Parameters
    ----------
    num_features
        Width of the invariant atom features the charges are predicted from.
    width
        Gaussian charge width σ, Å (0: point charges).
    accuracy
        Relative size of the omitted reciprocal-space (and real-space) terms.
    summation
        ``"ewald"``, ``"pme"`` or ``"auto"`` (PME from :data:`PME_FROM_ATOMS` atoms).
    """

    def __init__(
        self,
        num_features: int,
        width: float = 1.0,
        accuracy: float = 1e-6,
        summation: Summation = "auto",
    ) -> None:
        super().__init__()
        check_long_range(width, accuracy, summation)
        self.width = float(width)
        self.accuracy = float(accuracy)
        self.summation: Summation = summation
        self.charge_network = MLP([num_features, max(1, num_features // 2), 1])

    def config(self) -> dict[str, Any]:
        """The constructor arguments besides ``num_features`` (for model files)."""
        return {"width": self.width, "accuracy": self.accuracy, "summation": self.summation}

    def energies(self, graph: AtomicGraph, charges: Tensor) -> Tensor:
        """``[N]`` electrostatic energies (eV) of ``charges`` ``[N]`` (e); see
        :func:`coulomb_energies`."""
        return coulomb_energies(graph, charges, self.width, self.accuracy, self.summation)


def check_long_range(width: float, accuracy: float, summation: str) -> None:
    """Raise ``ValueError`` naming a long-range setting that cannot work."""
    if not (math.isfinite(width) and width >= 0):
        raise ValueError(f"the charge width must be a finite number of Å ≥ 0, got {width!r}")
    if not 0 < accuracy < 1:
        raise ValueError(f"the Ewald accuracy must lie between 0 and 1, got {accuracy!r}")
    if summation not in SUMMATIONS:
        raise ValueError(f"unknown summation {summation!r}; choose one of {SUMMATIONS}")


def neutralise(raw: Tensor, graph: AtomicGraph) -> Tensor:
    """``raw`` ``[N]`` shifted uniformly per structure to sum to its total charge, e."""
    counts = atoms_per_graph(graph).to(raw.dtype).clamp(min=1)
    excess = torch.zeros(graph.num_graphs, dtype=raw.dtype, device=raw.device)
    excess = excess.index_add(0, graph.batch, raw) - total_charge(graph).to(raw.dtype)
    return raw - (excess / counts)[graph.batch]


def coulomb_energies(
    graph: AtomicGraph,
    charges: Tensor,
    width: float = 0.0,
    accuracy: float = 1e-6,
    summation: Summation = "auto",
) -> Tensor:
    """Electrostatic energy of every atom, e_i = k_e q_i V_i, eV (module docstring).

    Differentiable in positions, cell and charges, so forces and stress follow by autograd.

    Parameters
    ----------
    graph
        The structures (only positions, cell, pbc and ``ptr`` are used: all pairs interact, not
        only the graph's edges).
    charges
        ``[N]`` charges, e.
    width
        Gaussian charge width σ, Å (0: point charges).
    accuracy
        Relative size of the omitted terms of the Ewald/PME sums.
    summation
        ``"ewald"``, ``"pme"`` or ``"auto"``.

    Returns
    -------
    Tensor
        ``[N]`` energies, eV; they sum to each structure's electrostatic energy.

    Raises
    ------
    ValueError
        For a structure periodic along one axis only (a wire), a slab without a cell vector
        along its normal, or bad settings.
    ImportError
        For a periodic structure without torch-pme installed.
    """
    check_long_range(width, accuracy, summation)
    out = []
    ptr = graph.ptr.tolist()
    for b in range(graph.num_graphs):
        atoms = slice(ptr[b], ptr[b + 1])
        q, r, pbc = charges[atoms], graph.positions[atoms], graph.pbc[b]
        if len(q) < 2 and not bool(pbc.any()):
            out.append(torch.zeros_like(q))
        elif bool(pbc.all()):
            out.append(_periodic(q, r, graph.cell[b], width, accuracy, summation))
        elif int(pbc.sum()) == 2:
            out.append(_slab(q, r, graph.cell[b], pbc, width, accuracy, summation, b))
        elif bool(pbc.any()):
            raise ValueError(
                f"structure {b} is periodic along one axis only: long-range electrostatics "
                "handles three periodic axes, two (a slab) or none"
            )
        else:
            out.append(_direct(q, r, width))
    return torch.cat(out) if out else charges.new_zeros(0)


def _pair_kernel(distance: Tensor, width: float) -> Tensor:
    """φ(r) = erf(r / 2σ) / r (1/r for σ = 0)."""
    if width == 0:
        return 1.0 / distance
    return torch.erf(distance / (2.0 * width)) / distance


def _direct(charges: Tensor, positions: Tensor, width: float) -> Tensor:
    """e_i = ½ k_e q_i Σ_{j≠i} q_j φ(r_ij), all pairs of a molecule."""
    n = len(charges)
    first, second = torch.triu_indices(n, n, offset=1, device=charges.device)
    distance = (positions[second] - positions[first]).norm(dim=-1)
    pair = 0.5 * COULOMB_CONSTANT * charges[first] * charges[second] * _pair_kernel(distance, width)
    return torch.zeros_like(charges).index_add(0, first, pair).index_add(0, second, pair)


def _periodic(
    charges: Tensor, positions: Tensor, cell: Tensor, width: float, accuracy: float, how: str
) -> Tensor:
    try:
        import torchpme
    except ImportError as error:
        raise ImportError(
            "long-range electrostatics of periodic cells needs torch-pme: "
            "pip install 'ase-gnn[long-range]'"
        ) from error
    decay = math.sqrt(2.0 * math.log(1.0 / accuracy))  # exp(−decay²/2) = accuracy
    smearing = math.sqrt(2.0) * width if width > 0 else POINT_CHARGE_SMEARING
    potential = torchpme.CoulombPotential(smearing=smearing).to(charges.device, charges.dtype)
    pme = how == "pme" or (how == "auto" and len(charges) >= PME_FROM_ATOMS)
    # Terms beyond k_c = decay / s are below ``accuracy``: torch-pme's Ewald keeps the wave
    # vectors n · 2π/L with |n| < L / lr_wavelength. PME interpolates the charges onto a mesh
    # of 2^⌈log2(2L / mesh_spacing + 1)⌉ points per axis, so mesh_spacing = lr_wavelength gives
    # a real spacing between a quarter and a half of it; with 6-point (quintic) splines the force
    # errors stay below 5e-4 eV/Å at accuracy 1e-6 (random ions, σ = 1 Å; RMS 1e-4 eV/Å), and
    # each halving of the spacing would cost 8 times the mesh.
    wavelength = math.pi * smearing / decay
    calculator: Any = (
        torchpme.PMECalculator(
            potential, mesh_spacing=wavelength, interpolation_nodes=6, full_neighbor_list=True
        )
        if pme
        else torchpme.EwaldCalculator(potential, lr_wavelength=wavelength, full_neighbor_list=True)
    )
    empty = torch.zeros(0, 2, dtype=torch.long, device=charges.device)
    potentials = calculator(
        charges=charges[:, None],
        cell=cell,
        positions=positions,
        neighbor_indices=empty,
        neighbor_distances=positions.new_zeros(0),
    )[:, 0]  # the reciprocal-space part, less the self-interaction of the splitting Gaussians
    energies = COULOMB_CONSTANT * charges * potentials
    if width == 0:
        energies = energies + _real_space(charges, positions, cell, smearing, smearing * decay)
    return energies


def _real_space(
    charges: Tensor, positions: Tensor, cell: Tensor, smearing: float, start: float
) -> Tensor:
    """e_i = ½ k_e q_i Σ_j q_j φ_sr(r_ij) S(r_ij) over pairs and images, φ_sr = erfc(r / √2 s) / r.

    S switches from 1 at ``start`` (where φ_sr has decayed to the accuracy) to 0 one ångström
    later with a quintic of continuous slope and curvature, so an ion crossing the cutoff moves
    the energy smoothly; cutting φ_sr there instead would jump by the accuracy.
    """
    from ase_gnn.graph.neighbors import neighbor_pairs

    device = positions.device
    cutoff = start + SWITCH_WIDTH
    center, neighbor, shift = neighbor_pairs(
        positions.detach().cpu().double().numpy(),
        cell.detach().cpu().double().numpy(),
        np.ones(3, dtype=bool),
        cutoff,
    )
    i = torch.as_tensor(center, device=device)
    j = torch.as_tensor(neighbor, device=device)
    shifts = torch.as_tensor(shift, dtype=positions.dtype, device=device)
    r = (positions[j] + shifts @ cell - positions[i]).norm(dim=-1)
    t = ((r - start) / SWITCH_WIDTH).clamp(0.0, 1.0)
    switch = 1.0 - t**3 * (10.0 - 15.0 * t + 6.0 * t**2)
    pair = charges[i] * charges[j] * torch.erfc(r / (math.sqrt(2.0) * smearing)) / r * switch
    return torch.zeros_like(charges).index_add(0, i, 0.5 * COULOMB_CONSTANT * pair)


def _slab(
    charges: Tensor,
    positions: Tensor,
    cell: Tensor,
    pbc: Tensor,
    width: float,
    accuracy: float,
    how: str,
    index: int,
) -> Tensor:
    """A slab: the 3-D sum over its cell (vacuum along the normal) plus the Yeh–Berkowitz
    correction, which removes the interaction of the slab's dipole with its images along the
    normal n (with the terms of a charged slab, Ballenegger et al. 2009):

        E_corr = (2π k_e / V) [M² − Q Σ q_i z_i² − Q² L² / 12],   z_i = r_i · n, M = Σ q_i z_i.
    """
    normal_axis = int(torch.nonzero(~pbc)[0])
    a, b = cell[pbc]
    normal = torch.linalg.cross(a, b)
    normal = normal / normal.norm()
    length = (cell[normal_axis] @ normal).abs()
    if float(length.detach()) < 1e-6:
        raise ValueError(
            f"structure {index} is a slab without a cell vector along its normal: give it one "
            "with vacuum (e.g. ase.build.fcc111(..., vacuum=10)) for its electrostatics"
        )
    energies = _periodic(charges, positions, cell, width, accuracy, how)
    z = positions @ normal
    total, dipole, second = charges.sum(), (charges * z).sum(), (charges * z**2).sum()
    volume = torch.linalg.det(cell).abs()
    potential = (2.0 * torch.pi / volume) * (
        2.0 * z * dipole - second - total * z**2 - total * length**2 / 6.0
    )  # Σ_i ½ q_i φ_i = E_corr
    return energies + 0.5 * COULOMB_CONSTANT * charges * potential
