"""explain: attributions on atoms and bonds for any ase-gnn model, through Captum.

It ships in the same ``ase-gnn`` distribution as ``ase_gnn`` (an unrelated PyPI package is also
called ``explain``) and imports only ``ase_gnn``'s public API; ``ase_gnn`` never imports it.

Public API::

    Explainer, Attribution                      attributions (explain.explainer, explain.result)
    Target, Energy, EnergyPerAtom, LocalEnergy,
    ForceComponent, StressComponent, HeadOutput what is explained (explain.targets)
    METHODS                                     the methods and their defaults (explain.methods)
    many_body, ManyBody, plot_profiles          the many-body expansion E = ΣΔ1 + ΣΔ2 + ΣΔ3 + R
                                                (explain.many_body)
    coulomb_pairs, predicted_charges,
    plot_charges                                the electrostatic part of a long-range model:
                                                exact pair energies beyond the cutoff, charges
                                                and their 3-D map (explain.long_range);
                                                Energy(part="electrostatic" | "short_range")
                                                attributes either part
    write_chemiscope                            an interactive page of attributions, bonds and
                                                triplets per frame (explain.viewer; needs the
                                                chemiscope extra)

Example::

    from explain import Explainer, Energy
    explainer = Explainer(model, method="integrated_gradients", target=Energy(), level="edge")
    attribution = explainer.explain(atoms)    # .edge [E], .node [N], .completeness_gap, ...
    attribution.plot3d("bonds.png")
"""

from explain.explainer import Explainer
from explain.long_range import CoulombPairs, coulomb_pairs, plot_charges, predicted_charges
from explain.many_body import ManyBody, many_body, plot_profiles
from explain.methods import METHODS
from explain.result import Attribution
from explain.targets import (
    Energy,
    EnergyPerAtom,
    ForceComponent,
    HeadOutput,
    LocalEnergy,
    StressComponent,
    Target,
)
from explain.viewer import write_chemiscope

__all__ = [
    "METHODS",
    "Attribution",
    "CoulombPairs",
    "Energy",
    "EnergyPerAtom",
    "Explainer",
    "ForceComponent",
    "HeadOutput",
    "LocalEnergy",
    "ManyBody",
    "StressComponent",
    "Target",
    "coulomb_pairs",
    "many_body",
    "plot_charges",
    "plot_profiles",
    "predicted_charges",
    "write_chemiscope",
]
